"""JupyterLab for this course: `make lab` adds this folder to JUPYTER_CONFIG_PATH, so it adds to your own settings.

Each notebook is a pair, NAME.ipynb (what you open, run and save) and NAME.py (its text twin, for reviewers and diffs;
jupytext keeps the two in step when you save). The file browser lists NAME.ipynb and hides NAME.py beside it, so a
double click always opens the notebook. Every other .py file (src/genmodels/, benchmarks/) stays in the listing, and
a hidden twin still opens from File > Open from Path... or the terminal.
"""

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager


class NotebookTwinsHidden(AsyncLargeFileManager):
    """Folder listings leave out NAME.py wherever NAME.ipynb sits beside it; nothing else changes."""

    async def _dir_model(self, path, content=True):
        model = await super()._dir_model(path, content=content)
        if content:
            names = {entry["name"] for entry in model["content"]}
            model["content"] = [entry for entry in model["content"] if not (
                entry["type"] != "directory" and entry["name"].endswith(".py")
                and entry["name"].removesuffix(".py") + ".ipynb" in names)]
        return model


c.ServerApp.contents_manager_class = NotebookTwinsHidden  # noqa: F821 (c is the config object Jupyter passes in)
