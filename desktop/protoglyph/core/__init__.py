"""The Qt-free core: preprocessing, encoder session and few-shot classifier."""
