"""One run's lifecycle for 1..N nodes: create, set up, render, pull and always delete."""
