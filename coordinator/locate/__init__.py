"""The locate job: the first module where the two nets part ways."""
