"""Labeling a folder: the one pipeline (:mod:`.run`) and where it embeds (:mod:`.engines`)."""
