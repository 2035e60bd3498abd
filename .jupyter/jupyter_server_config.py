"""JupyterLab for this course: `make lab` adds this folder to JUPYTER_CONFIG_PATH, so it adds to your own settings.

Each notebook is a pair, NAME.ipynb (what you open, run and save) and NAME.py (its text twin, for reviewers and diffs;
jupytext keeps the two in step when you save). The file browser lists NAME.ipynb and hides NAME.py beside it, so a
double click always opens the notebook. Every other .py file (src/genmodels/, benchmarks/) stays in the listing, and
a hidden twin still opens from File > Open from Path... or the terminal.

At the repository's root the browser also leaves out what only the build tools read (ROOT_HIDDEN: the slides' npm
packages and templates, jupytext's settings), so that the notebooks' folders and README.md come first; _build/, with
`make run`'s executed notebooks, stays. Those entries, too, open from File > Open from Path... or the terminal.
"""

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

ROOT_HIDDEN = {"node_modules", "templates", "package.json", "package-lock.json", "jupytext.toml"}


class NotebookTwinsHidden(AsyncLargeFileManager):
    """Folder listings leave out NAME.py wherever NAME.ipynb sits beside it, and ROOT_HIDDEN at the root; nothing
    else changes."""

    async def _dir_model(self, path, content=True):
        model = await super()._dir_model(path, content=content)
        if content:
            names = {entry["name"] for entry in model["content"]}
            at_root = path.strip("/") == ""
            model["content"] = [entry for entry in model["content"] if not (
                entry["type"] != "directory" and entry["name"].endswith(".py")
                and entry["name"].removesuffix(".py") + ".ipynb" in names) and not (
                at_root and entry["name"] in ROOT_HIDDEN)]
        return model


c.ServerApp.contents_manager_class = NotebookTwinsHidden  # noqa: F821 (c is the config object Jupyter passes in)
