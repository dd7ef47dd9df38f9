"""``${{ ... }}`` in pipeline text: ``matrix.NAME``, ``env.NAME`` and functions a caller adds.

An expression is a reference, never code: ``${{ CONTEXT.NAME }}`` looks a
name up in a mapping the caller hands in, and ``${{ fn('a', 'b') }}`` calls
only a function the caller hands in (the cache helper's ``hashFiles``).
Nothing else is evaluated, so a pipeline cannot run code in the server or
read its environment: ``env`` is the pipeline's env, never ``os.environ``.

Substitution is one pass over the text as written: a value that itself holds
``${{ ... }}`` is put in as it is, never expanded again. In ``run`` it is
text substitution, as in GitHub Actions: a value with quotes, ``;`` or ``$(...)``
becomes part of the script (prefer ``"$NAME"`` from the environment for values
that are not your own).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

import attrs

from sauci.exceptions import ConfigError

if TYPE_CHECKING:
    from sauci.core.models import Pipeline, Step

__all__ = [
    "CONTEXTS",
    "Expression",
    "ExpressionError",
    "expand",
    "find_expressions",
    "problems",
    "step_context",
]

CONTEXTS = ("env", "matrix")

_OPEN = "${{"
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(rf"\s*({_NAME})\.({_NAME})\s*")
_CALL = re.compile(rf"\s*({_NAME})\(\s*((?:'(?:[^']|'')*'\s*(?:,\s*'(?:[^']|'')*'\s*)*)?)\)\s*")
_ARGUMENT = re.compile(r"'((?:[^']|'')*)'")

Function = Callable[..., str]


class ExpressionError(ConfigError):
    """An expression that cannot be expanded; ``offset`` is where it starts in the text."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@attrs.frozen(kw_only=True)
class Expression:
    """One ``${{ ... }}`` of a text: a reference (``context``, ``name``) or a call."""

    start: int  # offset of "${{" in the text
    end: int  # just past "}}"
    source: str  # what is between the braces, stripped
    context: str | None = None
    name: str | None = None
    function: str | None = None
    arguments: tuple[str, ...] = ()
    problem: str | None = None  # set when the text is not an expression SauCI reads


def find_expressions(text: str) -> list[Expression]:
    """Every ``${{ ... }}`` of ``text`` in order, each read (or with its problem)."""
    if _OPEN not in text:
        return []
    found: list[Expression] = []
    position = 0
    while True:
        start = text.find(_OPEN, position)
        if start < 0:
            return found
        match = _EXPRESSION.match(text, start)
        if match is None:
            found.append(
                Expression(
                    start=start,
                    end=len(text),
                    source=text[start + 3 :].strip(),
                    problem="uses '${{' without a closing '}}'",
                )
            )
            return found
        found.append(_read(match))
        position = match.end()


def _read(match: re.Match[str]) -> Expression:
    inner = match.group(1)
    start, end, source = match.start(), match.end(), inner.strip()
    reference = _REFERENCE.fullmatch(inner)
    if reference is not None:
        return Expression(
            start=start,
            end=end,
            source=source,
            context=reference.group(1),
            name=reference.group(2),
        )
    call = _CALL.fullmatch(inner)
    if call is not None:
        arguments = tuple(a.replace("''", "'") for a in _ARGUMENT.findall(call.group(2)))
        return Expression(
            start=start, end=end, source=source, function=call.group(1), arguments=arguments
        )
    return Expression(
        start=start,
        end=end,
        source=source,
        problem=f"uses {_shown(source)}, which is not an expression SauCI reads: "
        "write ${{ matrix.NAME }} or ${{ env.NAME }}",
    )


def _shown(source: str) -> str:
    return f"${{{{ {source} }}}}" if source else "${{ }}"


def _did_you_mean(name: str, choices: Collection[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def problems(
    text: str,
    contexts: Mapping[str, Collection[str]],
    functions: Collection[str] = (),
) -> list[tuple[int, str]]:
    """What is wrong with the expressions of ``text``, as (offset, message).

    ``contexts`` maps each context available here to the names it holds
    (``{"matrix": ["py"], "env": ["CI_MODE"]}``); ``functions`` names the
    functions available here.
    """
    found: list[tuple[int, str]] = []
    for expression in find_expressions(text):
        message = _problem(expression, contexts, functions)
        if message:
            found.append((expression.start, message))
    return found


def _problem(
    expression: Expression,
    contexts: Mapping[str, Collection[str]],
    functions: Collection[str],
) -> str | None:
    """Why ``expression`` cannot be expanded here, as the end of a sentence
    whose subject is the text ("'run' in step 'a' ..."), or None."""
    if expression.problem is not None:
        return expression.problem
    uses = f"uses {_shown(expression.source)}, but"
    if expression.function is not None:
        if expression.function in functions:
            return None
        here = ", ".join(sorted(functions)) or "none"
        return (
            f"{uses} there is no function {expression.function!r}"
            + _did_you_mean(expression.function, functions)
            + f" (functions here: {here})"
        )
    context, name = expression.context, expression.name
    assert context is not None and name is not None
    if not contexts:
        return f"{uses} no expression can be used here"
    if context not in contexts:
        known = sorted(contexts)
        return (
            f"{uses} there is no context {context!r}"
            + _did_you_mean(context, known)
            + f" (contexts here: {', '.join(known)})"
        )
    names = contexts[context]
    if name in names:
        return None
    if context == "matrix":
        if not names:
            return f"{uses} the step has no 'matrix'"
        return f"{uses} the matrix has no variable {name!r}" + _did_you_mean(name, names)
    return (
        f"{uses} {name!r} is not set in the pipeline's env"
        + _did_you_mean(name, names)
        + " (env holds only the pipeline's and the step's 'env' and the matrix "
        "variables, not the server's environment or secrets)"
    )


def expand(
    text: str,
    context: Mapping[str, Mapping[str, str]],
    functions: Mapping[str, Function] | None = None,
) -> str:
    """``text`` with every expression replaced, in one pass.

    ``context`` maps context names to their values (``{"matrix": {...},
    "env": {...}}``); ``functions`` the functions a call may name (each gets
    the call's string arguments and returns text). Raises
    :class:`ExpressionError` for an expression that names anything else.
    """
    expressions = find_expressions(text)
    if not expressions:
        return text
    functions = functions or {}
    pieces: list[str] = []
    position = 0
    for expression in expressions:
        message = _problem(expression, context, functions)
        if message:
            raise ExpressionError(f"{_clip(text)} {message}", expression.start)
        pieces.append(text[position : expression.start])
        if expression.function is not None:
            pieces.append(str(functions[expression.function](*expression.arguments)))
        else:
            assert expression.context is not None and expression.name is not None
            pieces.append(context[expression.context][expression.name])
        position = expression.end
    pieces.append(text[position:])
    return "".join(pieces)


def step_context(pipeline: Pipeline, step: Step) -> dict[str, dict[str, str]]:
    """The context of ``step``'s expressions once it is loaded (for text read at run
    time, such as a cache key): its matrix values and the env the pipeline gives
    it (top-level env, the step's env, the matrix variables)."""
    return {"matrix": dict(step.matrix), "env": {**pipeline.env, **step.env}}


def _clip(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
