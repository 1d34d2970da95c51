"""Rendering results: terminal tables, JSON (the report schema), CSV."""
