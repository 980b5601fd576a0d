"""Griffe extension: the Sphinx roles in the docstrings become links in the site.

The docstrings name other objects the Sphinx way (``:func:`~ignite_mnist.inference.trained.load_model```),
which reads well in ``help()`` and in an editor. mkdocstrings knows autorefs' Markdown
(``[`load_model`][ignite_mnist.inference.trained.load_model]``) instead, so each role is rewritten when the
package is loaded:

* a name in a module the reference shows becomes a link (the build fails if it leads nowhere);
* a name in an internal module, or outside the package (``torch``, ``ignite``), stays code;
* a name that resolves to nothing in the package is reported, which fails the strict build.

Relative names (``:meth:`to_dict```) are resolved from the docstring's own scope.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).parent))
from reference import PACKAGE, is_internal  # a sibling file, not a package

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|exc|obj|const):"
                  r"`(?:(?P<title>[^`<]+?)\s*<(?P<named>[^`>]+)>|(?P<tilde>~?)\.?(?P<target>[^`]+))`")
logger = griffe.get_logger(__name__)


def _documented_module(path: str, package: griffe.Module) -> str | None:
    """The module whose page shows ``path`` (the longest module prefix), or None if it is internal."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        try:
            found = package[".".join(parts[1:end])] if end > 1 else package
        except (KeyError, griffe.AliasResolutionError):
            continue
        if isinstance(found, griffe.Module) or (isinstance(found, griffe.Alias) and found.is_module):
            return None if is_internal(name) else name
    return None


def _resolve(target: str, scope: griffe.Object) -> str | None:
    """The full path ``target`` names from ``scope``, or None when it is not in the package."""
    if target.split(".")[0] == PACKAGE:
        return target
    head, _, rest = target.partition(".")
    try:
        full = scope.resolve(head)
    except (griffe.NameResolutionError, AttributeError):
        owner = scope if scope.is_class else scope.parent
        inherited = owner.all_members.get(head) if owner is not None and owner.is_class else None
        if inherited is None:
            return None
        full = inherited.target_path if inherited.is_alias else inherited.path  # a method of a base class
    return f"{full}.{rest}" if rest else full


def _shown(path: str, found: griffe.Object | griffe.Alias, package: griffe.Module) -> bool:
    """Whether the reference renders ``path``: a public name in a documented module, with a docstring
    if it is an attribute (mkdocstrings leaves undocumented attributes out)."""
    if any(part.startswith("_") for part in path.split(".")) or _documented_module(path, package) is None:
        return False
    try:
        return not found.is_attribute or found.docstring is not None
    except griffe.AliasResolutionError:
        return False


def _comment_docstrings(module: griffe.Module) -> None:
    """Give attributes documented by ``#:`` comment lines (the Sphinx way) those lines as their docstring."""
    for member in module.members.values():
        if member.is_alias:
            continue
        if member.is_module:
            _comment_docstrings(member)
        elif member.is_attribute and member.docstring is None and member.lineno:
            lines = member.lines_collection[member.filepath]
            comment: list[str] = []
            number = member.lineno - 2
            while number >= 0 and lines[number].lstrip().startswith("#:"):
                comment.insert(0, lines[number].lstrip()[2:].strip())
                number -= 1
            if comment:
                member.docstring = griffe.Docstring(" ".join(comment), parent=member)


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring's Sphinx roles once the whole package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **_: Any) -> None:
        if pkg.name == PACKAGE:
            _comment_docstrings(pkg)
            self._visit(pkg, pkg)

    def _visit(self, obj: griffe.Object, package: griffe.Module) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(lambda match: self._markdown(match, obj, package), obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._visit(member, package)

    def _markdown(self, match: re.Match[str], scope: griffe.Object, package: griffe.Module) -> str:
        target = (match["named"] or match["target"]).removesuffix("()")
        shown = match["title"] or (target.rsplit(".", 1)[-1] if match["tilde"] else target)
        title = f"`{shown}`"
        full = _resolve(target, scope)
        if full is None and "." in target and target.split(".")[0] != PACKAGE:
            return title  # a dotted name outside the package (``ignite.handlers.Checkpoint``): shown as code
        if full is None:
            logger.warning("%s: the docstring names %r, which nothing in its scope is called", scope.path, target)
            return title
        if full != PACKAGE and not full.startswith(PACKAGE + "."):
            return title  # torch's, Ignite's, the standard library's: shown as code
        try:
            found = package[full.removeprefix(PACKAGE).lstrip(".")] if full != PACKAGE else package
        except KeyError:
            logger.warning("%s: the docstring names %r, which is not in the package", scope.path, target)
            return title
        return f"[{title}][{full}]" if _shown(full, found, package) else title
