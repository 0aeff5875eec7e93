"""Whole-platform work above every app: the risk replay and bench, the daily compliance job, demo data and the
demo platform, the commands that compose several apps. It may import every app; no app imports it."""
