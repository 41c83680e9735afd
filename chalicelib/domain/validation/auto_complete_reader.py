"""A static reader of model.py's ``auto_complete_config``: what it does to the config, never run.

It follows literal values, names bound to them, ``as_dict()`` (the real dict, as the backend hands
it out), loops over known lists, conditions on known values and a few builtins and list/dict/str
methods, and applies the backend's own ``ModelConfig`` methods (triton_python_backend_utils.py)
to the config. It stops with ``Open`` where the config is touched by anything it cannot evaluate,
and with ``Conflict`` where the backend's ModelConfig raises. Bounded in steps and sizes, so no
model.py makes it slow.
"""

from __future__ import annotations

import ast
import builtins
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_STEPS = 20_000  # statements and loop iterations one auto_complete_config may take to read
MAX_SIZE = 10_000  # longest list, string or range built while reading it
MAX_INT_BITS = 256  # larger integers are not configuration (repeated squaring would never end)
# Values that comparisons, str() and the builtins may walk in one read: shared lists nest, so
# [[s] * 10_000] * 10_000 is small to build and huge to print or compare.
MAX_WORK = 200_000


def module_names(body: list[ast.stmt]) -> set[str]:
    """Names a module binds at import time: the backend reads ``module.TritonPythonModel``, which
    may be a class, an import or an assignment, possibly under a top-level if/try/with."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for block in ("body", "orelse", "finalbody"):
                names |= module_names(getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                names |= module_names(handler.body)
    return names


class BackendModelConfig:
    """triton_python_backend_utils.py's ModelConfig, its checks and messages as they are there."""

    def __init__(self, model_config: dict[str, Any]) -> None:
        self._model_config = model_config

    def as_dict(self) -> dict[str, Any]:
        return self._model_config

    def set_max_batch_size(self, max_batch_size: Any) -> None:
        if self._model_config["max_batch_size"] > max_batch_size:
            raise ValueError(
                "configuration specified max_batch_size "
                + str(self._model_config["max_batch_size"])
                + ", but in auto-complete-config function for model '"
                + self._model_config["name"]
                + "' specified max_batch_size "
                + str(max_batch_size)
            )
        self._model_config["max_batch_size"] = max_batch_size

    def set_dynamic_batching(self) -> None:
        found = next((s for s in ("sequence_batching", "ensemble_scheduling") if s in self._model_config), None)
        if found is not None:
            raise ValueError(
                "Configuration specified scheduling_choice as '"
                + found
                + "', but auto-complete-config function for model '"
                + self._model_config["name"]
                + "' tries to set scheduling_choice as 'dynamic_batching'"
            )
        self._model_config.setdefault("dynamic_batching", {})

    def add_input(self, input: Any) -> None:  # the backend's parameter names, for keyword calls
        self._add("input", input, ["name", "data_type", "dims", "optional"])

    def add_output(self, output: Any) -> None:
        self._add("output", output, ["name", "data_type", "dims"])

    def _add(self, kind: str, tensor: Any, valid: list[str]) -> None:
        name = self._model_config["name"]
        for prop in tensor:
            if prop not in valid:
                listed = ", ".join(f"'{v}'" for v in valid[:-1]) + f" and '{valid[-1]}'"
                raise ValueError(
                    f"{kind} '{tensor['name']}' in auto-complete-config function for model '{name}' contains "
                    f"property other than {listed}."
                )
        if "name" not in tensor:
            raise ValueError(f"{kind} in auto-complete-config function for model '{name}' is missing 'name' property.")
        for prop in ("data_type", "dims"):
            if prop not in tensor:
                raise ValueError(
                    f"{kind} '{tensor['name']}' in auto-complete-config function for model '{name}' is missing "
                    f"'{prop}' property."
                )
        for current in self._model_config[kind]:
            if tensor["name"] != current["name"]:
                continue
            if current["data_type"] != "TYPE_INVALID" and current["data_type"] != tensor["data_type"]:
                raise ValueError(
                    f"unable to load model '{name}', configuration expects datatype {current['data_type']} for "
                    f"{kind} '{tensor['name']}', model provides {tensor['data_type']}"
                )
            if current["dims"] and current["dims"] != tensor["dims"]:
                raise ValueError(
                    f"model '{name}', tensor '{tensor['name']}': the model expects dims {tensor['dims']} but the "
                    f"model configuration specifies dims {current['dims']}"
                )
            if (
                kind == "input"
                and "optional" in current
                and current["optional"] != tensor.get("optional", current["optional"])
            ):
                raise ValueError(
                    f"model '{name}', tensor '{tensor['name']}': the model expects optional {tensor['optional']} "
                    f"but the model configuration specifies optional {current['optional']}"
                )
            current["data_type"], current["dims"] = tensor["data_type"], tensor["dims"]
            if kind == "input" and "optional" in tensor:
                current["optional"] = tensor["optional"]
            return
        self._model_config[kind].append(tensor)

    def set_model_transaction_policy(self, transaction_policy_dict: Any) -> None:
        name = self._model_config["name"]
        for prop in transaction_policy_dict:
            if prop != "decoupled":
                raise ValueError(
                    "model transaction property in auto-complete-config function for model '"
                    + name
                    + "' contains property other than 'decoupled'."
                )
        current = self._model_config.setdefault("model_transaction_policy", {})
        if "decoupled" in transaction_policy_dict:
            if "decoupled" in current and current["decoupled"] != transaction_policy_dict["decoupled"]:
                raise ValueError(
                    "trying to change decoupled property in auto-complete-config for model '"
                    + name
                    + "', which is already set to '"
                    + str(current["decoupled"])
                    + "'."
                )
            current["decoupled"] = transaction_policy_dict["decoupled"]


CONFIG_METHODS = {"as_dict", "set_max_batch_size", "set_dynamic_batching", "add_input", "add_output"}
CONFIG_METHODS |= {"set_model_transaction_policy"}


class _Unknown(Exception):
    """A value that is not known statically."""


@dataclass
class Open(Exception):
    """The function does something to the config that is not known statically."""

    reason: str
    line: int | None


@dataclass
class Conflict(Exception):
    """The backend's ModelConfig raises: the model does not load."""

    message: str
    line: int | None


@dataclass
class _Return(Exception):
    value: Any


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


UNKNOWN = object()
# What evaluating a builtin, method or operator on the model's own values may raise: the value is
# then unknown (OverflowError: range(10**40), list.insert(10**40, x)).
EVALUATION_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError, OverflowError)

BUILTINS: dict[str, Callable[..., Any]] = {
    name: getattr(builtins, name)
    for name in ("len", "list", "tuple", "dict", "set", "str", "int", "bool", "min", "max", "any", "all", "sorted")
}
BUILTINS |= {
    "range": lambda *a: _bounded(range(*a)),
    "enumerate": lambda *a: list(enumerate(*a)),
    "zip": lambda *a: list(zip(*a, strict=False)),
    "reversed": lambda a: list(reversed(a)),
}
METHODS = {
    list: {"append", "extend", "insert", "pop", "index", "count", "copy", "remove"},
    dict: {"get", "keys", "values", "items", "copy", "setdefault", "update", "pop"},
    # not format or replace: a width or an empty pattern turns a short string into gigabytes
    str: {"upper", "lower", "startswith", "endswith", "strip", "split", "join"},
}
OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


UNARY: dict[type, Callable[[Any], Any]] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _bounded(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set | range) and len(value) > MAX_SIZE:
        raise _Unknown
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Unknown
    return value


def _binary(op: ast.operator, left: Any, right: Any) -> Any:
    """``left op right``, refused before it is computed where the result would be too large."""
    if isinstance(op, ast.Mult):
        for sequence, times in ((left, right), (right, left)):
            sized = isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int)
            if sized and len(sequence) * times > MAX_SIZE:
                raise _Unknown
    if isinstance(op, ast.Mod) and isinstance(left, str | bytes):
        raise _Unknown  # printf-style widths ('%999999999d') build any size
    return _bounded(OPERATORS[type(op)](left, right))


def weight(value: Any, budget: int) -> int:
    """How many values and characters walking ``value`` visits (shared parts count each time),
    stopping once past ``budget``."""
    stack, weight = [value], 0
    while stack and weight <= budget:
        item = stack.pop()
        weight += 1 + (len(item) if isinstance(item, str | bytes) else 0)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return weight


def module_constants(tree: ast.Module) -> dict[str, Any]:
    """Top-level names bound to literal data (e.g. INPUTS = [{...}]) before the class runs."""
    reader = Reader(BackendModelConfig({}), {})
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                value = reader.value(node.value)
            except (_Unknown, Open, Conflict, RecursionError, MemoryError):
                value = UNKNOWN
            reader.env.update({t.id: value for t in node.targets if isinstance(t, ast.Name)})
        else:
            reader.env.update(dict.fromkeys(module_names([node]), UNKNOWN))
    return reader.env


@dataclass
class Reader:
    """Follows auto_complete_config as far as its values are known."""

    handle: BackendModelConfig
    env: dict[str, Any]
    parameter: str = ""
    steps: int = 0
    work: int = 0
    line: int | None = field(default=None)

    def run(self, function: ast.FunctionDef) -> Any:
        """What the function returns (the handle, another value, or UNKNOWN), or how it stops."""
        decorators = {d.id for d in function.decorator_list if isinstance(d, ast.Name)}
        if len(decorators) != len(function.decorator_list) or decorators - {"staticmethod", "classmethod"}:
            return Open("auto_complete_config has decorators mmedeploy does not follow", function.lineno)
        params = [a.arg for a in function.args.posonlyargs + function.args.args]
        first = 1 if "classmethod" in decorators else 0
        required = len(params) - len(function.args.defaults)
        if len(params) <= first or required > first + 1:
            return Open(
                "Triton calls TritonPythonModel.auto_complete_config(config) with one argument: declare it "
                "@staticmethod def auto_complete_config(auto_complete_model_config)",
                function.lineno,
            )
        self.parameter = params[first]
        self.env = {**self.env, self.parameter: self.handle}
        try:
            self.block(function.body)
        except _Return as done:
            return done.value
        except (Open, Conflict) as stop:
            return stop
        except (_Break, _Continue):
            return Open("a break or continue outside a loop", self.line)
        except RecursionError:
            return Open("the function is nested too deeply to follow", self.line)
        except MemoryError:
            return Open("it builds values too large to follow", self.line)
        return None

    # -- statements

    def block(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self.line = statement.lineno
            self.step()
            self.statement(statement)

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise Open("the function runs too long to follow", self.line)

    def charge(self, *values: Any) -> None:
        """Count the values an operation will walk; stop reading once the budget is spent."""
        for value in values:
            self.spend(weight(value, MAX_WORK - self.work))

    def spend(self, work: int) -> None:
        self.work += work
        if self.work > MAX_WORK:
            raise Open("it builds or compares values too large to follow", self.line)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Expr):
            call = node.value
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print":
                return  # print() changes nothing
            self.evaluate_or_forget(node.value, node)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            if node.value is None:
                return
            value = self.evaluate_or_forget(node.value, node)
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                self.assign(target, value)
        elif isinstance(node, ast.AugAssign):
            self.augmented(node)
        elif isinstance(node, ast.If):
            self.branch(node)
        elif isinstance(node, ast.For):
            self.loop(node)
        elif isinstance(node, ast.Return):
            raise _Return(self.evaluate_or_forget(node.value, node) if node.value else None)
        elif isinstance(node, ast.Break):
            raise _Break
        elif isinstance(node, ast.Continue):
            raise _Continue
        elif isinstance(node, ast.Pass | ast.Global | ast.Nonlocal):
            return
        elif isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef):
            self.env.update(dict.fromkeys(module_names([node]), UNKNOWN))
        elif isinstance(node, ast.Raise):
            raise Open("it raises an exception mmedeploy does not evaluate", node.lineno)
        else:  # while, try, with, match, assert, del, ...: not followed
            self.skip(node, f"a '{type(node).__name__.lower()}' statement that touches the config")

    def evaluate_or_forget(self, expression: ast.expr, statement: ast.stmt) -> Any:
        try:
            return self.value(expression)
        except _Unknown:
            if self.touches_config(expression):
                raise Open("it passes the config to code mmedeploy does not evaluate", statement.lineno) from None
            return UNKNOWN

    def skip(self, node: ast.AST, reason: str) -> None:
        """A statement not followed: fine unless it touches the config; every name it mentions is forgotten."""
        if self.touches_config(node):
            raise Open(reason, getattr(node, "lineno", self.line))
        for name in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}:
            self.env[name] = UNKNOWN

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = list(value) if isinstance(value, list | tuple) else None
            if items is None or len(items) != len(target.elts):
                for element in target.elts:
                    self.assign(element, UNKNOWN)
                return
            for element, item in zip(target.elts, items, strict=True):
                self.assign(element, item)
        elif isinstance(target, ast.Subscript):
            try:
                container, key = self.value(target.value), self.value(target.slice)
            except _Unknown:
                self.skip(target, "it changes the config through values mmedeploy does not evaluate")
                return
            linked = self.linked(container)
            if value is UNKNOWN and linked:
                raise Open("it writes a computed value into the config", self.line)
            try:
                container[key] = value
            except EVALUATION_ERRORS:
                if linked:
                    raise Open("it writes into the config in a way mmedeploy does not follow", self.line) from None
        else:
            self.skip(target, "it assigns to an attribute of the config")

    def augmented(self, node: ast.AugAssign) -> None:
        operation = OPERATORS.get(type(node.op))
        if operation is None or not isinstance(node.target, ast.Name):
            self.skip(node, "an augmented assignment into the config")
            return
        try:
            current, change = self.value(ast.Name(id=node.target.id, ctx=ast.Load())), self.value(node.value)
            self.charge(current, change)
            self.assign(node.target, _binary(node.op, current, change))
        except (_Unknown, *EVALUATION_ERRORS):
            if self.touches_config(node):
                raise Open("it changes a config value mmedeploy does not evaluate", node.lineno) from None
            self.env[node.target.id] = UNKNOWN

    def branch(self, node: ast.If) -> None:
        try:
            condition = self.value(node.test)
        except _Unknown:
            self.skip(node, "it changes the config under a condition mmedeploy does not evaluate")
            return
        self.block(node.body if condition else node.orelse)

    def loop(self, node: ast.For) -> None:
        try:
            items = list(self.value(node.iter))
        except (_Unknown, *EVALUATION_ERRORS):
            self.skip(node, "it loops over values mmedeploy does not evaluate")
            return
        for item in items:
            self.step()
            self.assign(node.target, item)
            try:
                self.block(node.body)
            except _Break:
                return
            except _Continue:
                continue
        self.block(node.orelse)

    def touches_config(self, node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and self.linked(self.env.get(n.id, UNKNOWN)) for n in ast.walk(node))

    def linked(self, value: Any) -> bool:
        """The config handle, or a dict or list inside the config (as_dict() hands out the real one)."""
        if value is self.handle:
            return True
        return isinstance(value, dict | list) and any(value is part for part in _parts(self.handle.as_dict()))

    # -- expressions

    def value(self, node: ast.expr) -> Any:
        """The value of ``node``, or _Unknown; calls on the config happen here (Open, Conflict)."""
        try:
            return self.literal(node)
        except EVALUATION_ERRORS:
            raise _Unknown from None

    def literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            found = self.env.get(node.id, UNKNOWN)
            if found is UNKNOWN:
                raise _Unknown
            return found
        built = self.build(node)
        if not (isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice)):  # an item is not new
            # Each value is bounded; their number is not: 20,000 lines of 'a = [0] * 10000' hold gigabytes.
            self.spend(len(built) if isinstance(built, str | bytes | list | tuple | dict | set) else 1)
        return built

    def build(self, node: ast.expr) -> Any:
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                raise _Unknown
            items = [self.value(e) for e in node.elts]
            return _bounded(
                items if isinstance(node, ast.List) else tuple(items) if isinstance(node, ast.Tuple) else set(items)
            )
        if isinstance(node, ast.Dict):
            result: dict[Any, Any] = {}
            for key, item in zip(node.keys, node.values, strict=True):
                if key is None:
                    result.update(self.value(item))
                else:
                    result[self.value(key)] = self.value(item)
            return _bounded(result)
        if isinstance(node, ast.Call):
            return self.call(node)
        return self.operation(node)

    def operation(self, node: ast.expr) -> Any:
        try:
            if isinstance(node, ast.Subscript):
                container = self.value(node.value)
                if isinstance(node.slice, ast.Slice):
                    parts = [
                        self.value(p) if p else None for p in (node.slice.lower, node.slice.upper, node.slice.step)
                    ]
                    return container[slice(*parts)]
                return container[self.value(node.slice)]
            if isinstance(node, ast.Compare):
                left = self.value(node.left)
                for op, right_node in zip(node.ops, node.comparators, strict=True):
                    right = self.value(right_node)
                    if isinstance(op, ast.In | ast.NotIn) and isinstance(right, dict | set):
                        self.charge(left)  # a hash lookup walks no dict
                    else:
                        self.charge(left, right)
                    if not OPERATORS[type(op)](left, right):
                        return False
                    left = right
                return True
            if isinstance(node, ast.BoolOp):
                result = None
                for operand in node.values:
                    result = self.value(operand)
                    if bool(result) != isinstance(node.op, ast.And):
                        return result
                return result
            if isinstance(node, ast.UnaryOp):
                operand = self.value(node.operand)
                unary = UNARY.get(type(node.op))
                if unary is None:
                    raise _Unknown
                return unary(operand)
            if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
                left, right = self.value(node.left), self.value(node.right)
                self.charge(left, right)
                return _binary(node.op, left, right)
            if isinstance(node, ast.IfExp):
                return self.value(node.body if self.value(node.test) else node.orelse)
            if isinstance(node, ast.JoinedStr):
                return "".join(self.formatted(v) for v in node.values)
            if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
                items = list(self.comprehension(node.generators, 0, node.elt))
                return set(items) if isinstance(node, ast.SetComp) else _bounded(items)
        except EVALUATION_ERRORS:
            raise _Unknown from None
        raise _Unknown

    def formatted(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.FormattedValue) and node.conversion == -1 and node.format_spec is None:
            value = self.value(node.value)
            self.charge(value)
            return str(_bounded(value))
        raise _Unknown

    def comprehension(self, generators: list[ast.comprehension], index: int, element: ast.expr) -> Iterator[Any]:
        if index == len(generators):
            yield self.value(element)
            return
        generator = generators[index]
        if generator.is_async:
            raise _Unknown
        saved = dict(self.env)
        try:
            for item in list(self.value(generator.iter)):
                self.step()
                self.assign(generator.target, item)
                if all(self.value(condition) for condition in generator.ifs):
                    yield from self.comprehension(generators, index + 1, element)
        finally:
            self.env = saved

    def arguments(self, node: ast.Call) -> tuple[list[Any], dict[str, Any]]:
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise _Unknown
        return [self.value(a) for a in node.args], {str(k.arg): self.value(k.value) for k in node.keywords}

    def call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Name):
            function = BUILTINS.get(node.func.id)
            if function is None or node.func.id in self.env:
                raise _Unknown
            args, kwargs = self.arguments(node)
            self.charge(args, kwargs)
            try:
                return _bounded(function(*args, **kwargs))
            except EVALUATION_ERRORS:
                raise _Unknown from None
        if not isinstance(node.func, ast.Attribute):
            raise _Unknown
        receiver = self.value(node.func.value)
        method = node.func.attr
        if receiver is self.handle:
            if method not in CONFIG_METHODS:
                raise Open(f"it calls {method}() on the config", node.lineno)
            try:
                args, kwargs = self.arguments(node)
            except _Unknown:
                raise Open(f"it passes computed values to {method}()", node.lineno) from None
            config = self.handle.as_dict()
            # add_input and add_output compare against every tensor the config already has
            self.spend(len(config.get("input") or ()) + len(config.get("output") or ()))
            self.charge(args, kwargs)
            try:
                return getattr(self.handle, method)(*args, **kwargs)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise Conflict(f"{type(exc).__name__}: {exc}", node.lineno) from None
        allowed = next((names for kind, names in METHODS.items() if isinstance(receiver, kind)), set())
        if method not in allowed:
            raise _Unknown
        args, kwargs = self.arguments(node)
        self.charge(receiver, args, kwargs)
        pieces = args[0] if method == "join" and args else ()
        if isinstance(pieces, str | list | tuple | dict | set) and len(receiver) * len(pieces) > MAX_SIZE:
            raise _Unknown  # the separator repeats between every piece
        try:
            result = getattr(receiver, method)(*args, **kwargs)
        except EVALUATION_ERRORS:
            raise _Unknown from None
        _bounded(receiver)  # extend, update and the like grow it in place
        return list(result) if method in ("keys", "values", "items") else _bounded(result)


def _parts(value: Any) -> Iterator[Any]:
    """Every dict and list inside ``value`` (each once, so shared or cyclic data stays cheap)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend(v for v in (item.values() if isinstance(item, dict) else item) if isinstance(v, dict | list))
