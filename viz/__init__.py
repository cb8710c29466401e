"""Browser front end: watch factions fracture while you move the leadership's levers.

Start it with ``defection app`` or ``solara run viz/app.py``; in Jupyter, display
``viz.app.Page()``. Every browser session builds its own model (see viz/session.py).
"""
