"""Qt-free, torch-free core of the editor: shared by the app and the headless commands."""
