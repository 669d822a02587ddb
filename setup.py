"""The one build step pyproject.toml cannot declare: compiling the message catalogs.

The repository holds the ``.po`` sources only. A wheel gets the ``.mo`` files Django reads,
compiled by ``build_support.compile_messages`` (pure Python: no GNU gettext needed). An
editable install imports the source folders themselves, so it compiles them there.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_support.compile_messages import compile_catalogs


class BuildPyWithCatalogs(build_py):
    """``build_py``, then every ``locale/*/LC_MESSAGES/*.po`` of the packages compiled."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            top_level = {package.partition(".")[0] for package in self.packages}
            folders = [Path(self.get_package_dir(package)) for package in sorted(top_level)]
        else:
            folders = [Path(self.build_lib)]  # the packages' .po files were copied here
        for folder in folders:
            compile_catalogs(folder)


setup(cmdclass={"build_py": BuildPyWithCatalogs})
