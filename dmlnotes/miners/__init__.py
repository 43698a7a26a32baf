"""Miners pick the informative pairs or triplets of a batch; a loss accepts what they return."""
