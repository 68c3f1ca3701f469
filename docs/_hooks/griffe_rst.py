"""griffe extension: read the reStructuredText habits of our docstrings as Markdown.

The docstrings are Google style, but they name other objects with Sphinx roles
(``:class:`Task```, ``:meth:`~KlingSession.wait```) and sometimes end a line with
``::`` before an indented block. mkdocstrings renders docstrings as Markdown, where
both show literally. This extension rewrites them as the site loads the package
(the source files are untouched):

- a role naming a public name (one in ``kling_async.__all__`` or
  ``kling_async.testing.__all__``) becomes a cross-reference to its entry in the
  API reference;
- any other role becomes inline code, with ``~`` shortening the path to its last
  part as Sphinx does;
- a trailing ``::`` becomes ``:`` (the indented block after it is already code in
  Markdown).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj|const):`(?P<body>[^`]+)`")
LITERAL_BLOCK = re.compile(r"(?<=\S)::[ \t]*$", re.MULTILINE)
EXPLICIT_TITLE = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^>]+)>$", re.DOTALL)


class RstRoles(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` in every docstring of the loaded package."""

    def __init__(self) -> None:
        super().__init__()
        self._public: dict[str, str] | None = None

    def _public_names(self, loader: griffe.GriffeLoader) -> dict[str, str]:
        """Short name and dotted path -> the identifier of its reference entry."""
        if self._public is None:
            public: dict[str, str] = {}
            for module_path in ("kling_async", "kling_async.testing"):
                try:
                    module = loader.modules_collection[module_path]
                except KeyError:
                    continue
                for name in module.exports or ():
                    identifier = f"{module_path}.{name}"
                    public.setdefault(str(name), identifier)
                    public[identifier] = identifier
                    member = module.members.get(str(name))
                    if member is not None and member.is_alias:
                        public.setdefault(member.target_path, identifier)
            self._public = public
        return self._public

    def _rewrite(self, text: str, loader: griffe.GriffeLoader) -> str:
        public = self._public_names(loader)

        def role(match: re.Match[str]) -> str:
            body = match.group("body").strip()
            explicit = EXPLICIT_TITLE.match(body)
            if explicit:
                title, target = explicit.group("title"), explicit.group("target")
            else:
                target = body.lstrip("~")
                title = target.rsplit(".", 1)[-1] if body.startswith("~") else target
            target = target.lstrip(".")
            identifier = public.get(target)
            if identifier is not None:
                return f"[`{title}`][{identifier}]"
            return f"`{title}`"

        return LITERAL_BLOCK.sub(":", ROLE.sub(role, text))

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **_: Any) -> None:
        """Rewrite one object's docstring once the whole package is loaded."""
        if obj.docstring is not None:
            obj.docstring.value = self._rewrite(obj.docstring.value, loader)
