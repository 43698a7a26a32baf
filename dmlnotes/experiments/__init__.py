"""Experiments shared by several lessons: the common comparison setup, the temperature sweep."""
