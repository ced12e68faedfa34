"""Plugins that ship with the core; registered before any external plugin."""
