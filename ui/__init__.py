"""The web front end: a Gradio app over the `qa` assistant (`python -m ui`).

Importing this package is cheap; gradio is imported by `ui.app` only.
"""
