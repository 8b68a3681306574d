"""The desktop window (PySide6): a thin Qt layer over :mod:`protoglyph.core`."""
