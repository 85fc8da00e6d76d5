"""Hostile and clumsy input: each case ends in one clear error naming the file or field (issue 10)."""
