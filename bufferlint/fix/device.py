"""Passes the buffer's device to the helpers that replayed code calls, as Lit-GPT's fix
did: the rebuilt tensor must land where materialization put the buffer.
"""

from __future__ import annotations

import libcst as cst

from bufferlint.fix.replay import self_attribute
from bufferlint.fix.workspace import Workspace


class PassDevice(cst.CSTTransformer):
    """Passes `device=self.<buffer>.device` to `self.helper(...)` calls whose helper takes a
    `device` parameter that construction left at its default."""

    def __init__(
        self,
        workspace: Workspace,
        qualified: str,
        self_name: str,
        buffer: str,
        parameter: str = "device",
    ) -> None:
        self.workspace = workspace
        self.qualified = qualified  # the class whose helpers `self.helper` finds
        self.self_name = self_name
        self.buffer = buffer
        self.parameter = parameter  # the helpers' device parameter (the convention's)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        func = updated.func
        if not (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == self.self_name
        ):
            return updated
        project = self.workspace.project
        found = project.find_method(self.qualified, func.attr.value)
        located = self.workspace.method_node(*found) if found else None
        if located is None:
            return updated
        params = located[1].params
        positional = [p.name.value for p in (*params.posonly_params, *params.params)][1:]
        accepted = positional + [p.name.value for p in params.kwonly_params]
        parameter = self.parameter
        if parameter not in accepted or any(a.star for a in updated.args):
            return updated
        if any(a.keyword is not None and a.keyword.value == parameter for a in updated.args):
            return updated
        given = sum(1 for a in updated.args if a.keyword is None)
        if parameter in positional and positional.index(parameter) < given:
            return updated
        device = cst.Attribute(
            value=self_attribute(self.self_name, self.buffer), attr=cst.Name("device")
        )
        args = list(updated.args)
        if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
            args[-1] = args[-1].with_changes(
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
        equal = cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        )
        args.append(cst.Arg(keyword=cst.Name(parameter), value=device, equal=equal))
        return updated.with_changes(args=args)
