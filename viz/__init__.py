"""Browser front end: watch factions fracture while you move the leadership's levers.

Start it with ``defection app`` or ``solara run viz/app.py``; in Jupyter, display
``viz.app.Page()``. Each browser session gets its own run (viz/runner.py): the server
steps the model and sends frames of data (viz/frames.py); the browser draws them
(viz/live.py, viz/live.vue) and holds the lever controls itself (viz/levers.py,
viz/levers.vue). Runs are recipes of settings and dated actions (viz/journal.py), which
is what links, comparisons, the spread over seeds (viz/ensemble.py) and downloads are
built on. viz/server.py holds the server's limits and closes what Solara leaves open.
"""
