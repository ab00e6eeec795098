"""Read models over several apps: the overview counts and the analytics page.

They read calls and tickets together, so they live above both, in the
composition layer.
"""
