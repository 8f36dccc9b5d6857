"""Fuzzing the parsers: targets, a re-signing mutator, a seed corpus, a bounded run, a campaign."""
