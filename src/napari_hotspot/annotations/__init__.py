"""The Qt-free annotation data model, project storage, imports and exports."""
