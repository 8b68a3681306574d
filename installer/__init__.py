"""The parts of build_installer.py: the bundle, the packages, and the checks."""
