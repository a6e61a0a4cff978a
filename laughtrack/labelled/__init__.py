"""Labelled media: label files in (CSV, Audacity, TextGrid), scores and tuned event rules out, and
the moments as label tracks and captions for editors."""
