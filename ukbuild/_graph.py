"""Pure graph operations over actions: validation, closure and order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import ConfigError
from .model import Action


def check_graph(actions: Mapping[str, Action]) -> None:
    """Every dependency exists and there is no cycle; errors name the action's origin."""
    for action in actions.values():
        for dep in action.dependencies:
            if dep not in actions:
                raise ConfigError(
                    f"{action.origin}: {action.name}: depends on unknown action '{dep}'",
                    hint="declare it, or remove it from deps",
                    reason="unknown-dependency",
                )
    order(actions, actions)


def closure(actions: Mapping[str, Action], targets: Iterable[str]) -> set[str]:
    needed: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(actions[name].dependencies)
    return needed


def order(actions: Mapping[str, Action], names: Iterable[str]) -> list[str]:
    """Dependencies before dependants (stable: sorted by name within a level)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    result: list[str] = []
    for root in sorted(names):
        if state.get(root) == 2:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(set(actions[root].dependencies), reverse=True))]
        path = [root]
        state[root] = 1
        while stack:
            name, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                state[name] = 2
                result.append(name)
                continue
            dep = pending.pop()
            if state.get(dep) == 2:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                first = actions[dep]
                raise ConfigError(
                    f"{first.origin}: {dep}: dependency cycle: {' -> '.join(cycle)}",
                    hint="remove one of these dependencies",
                    reason="dependency-cycle",
                )
            state[dep] = 1
            path.append(dep)
            stack.append((dep, sorted(set(actions[dep].dependencies), reverse=True)))
    return result


def dependants(actions: Mapping[str, Action], names: Iterable[str]) -> dict[str, list[str]]:
    wanted = set(names)
    out: dict[str, list[str]] = {n: [] for n in wanted}
    for name in wanted:
        for dep in set(actions[name].dependencies):
            if dep in out:
                out[dep].append(name)
    return out
