"""The local web page (``softsplat-app``, ``python app.py``): a thin layer over ``softsplat-interpolate``.

* ``jobs.py``: a request as the command line it stands for, run in a thread and a folder of its own, watched and
  cancelled; no Gradio.
* ``preview.py``: what is shown beside a result (cross-fade, loop, a copy browsers play).
* ``page.py`` and ``sync.js``: the Gradio page, and the script that makes its two players play as one.

``cli/app.py`` starts it. Nothing here is imported by the tools below it.
"""
