"""Weight migration without a framework: map files, layer rules, value transforms, plans, conversion."""
