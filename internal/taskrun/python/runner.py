"""Updraft's runner for `python` tasks: calls one function of the DAG's bundle.

Invoked as `python -u runner.py SPEC.json`. The spec names the bundle root, the callable,
the kwargs (already rendered and decoded), the context and where to write the result. The
result file (not stdout) carries the outcome: {"xcom": value}, {"skip": message} or
{"error": {"type", "message", "traceback"}}. print and logging go to the task log.
Exit 0: success; 99: skipped; 1: failed.
"""
import datetime
import importlib
import importlib.util
import inspect
import json
import logging
import os
import sys
import traceback

EXIT_SKIP = 99


def _write(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    os.replace(tmp, path)


def _load(spec):
    root = spec["root"]
    if spec.get("callable"):
        mod, _, fn = spec["callable"].partition(":")
        module = importlib.import_module(mod)
        where = mod
    else:
        path = os.path.join(root, spec["file"])
        s = importlib.util.spec_from_file_location("updraft_task_module", path)
        module = importlib.util.module_from_spec(s)
        sys.modules["updraft_task_module"] = module
        s.loader.exec_module(module)
        fn, where = spec["function"], spec["file"]
    f = getattr(module, fn, None)
    if not callable(f):
        raise AttributeError("%s defines no function %r" % (where, fn))
    return f


def _context(ctx):
    for k in ("logical_date", "data_interval_start", "data_interval_end"):
        if isinstance(ctx.get(k), str):
            ctx[k] = datetime.datetime.fromisoformat(ctx[k].replace("Z", "+00:00"))
    return ctx


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    result = spec["result"]
    sys.path.insert(0, spec["root"])
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
    import updraft

    try:
        f = _load(spec)
        kwargs = dict(spec.get("kwargs") or {})
        try:
            params = inspect.signature(f).parameters
        except (TypeError, ValueError):
            params = {}
        if "context" in params and "context" not in kwargs:
            kwargs["context"] = _context(spec.get("context") or {})
        value = f(**kwargs)
        try:
            _write(result, {"xcom": value})
        except (TypeError, ValueError) as e:
            raise TypeError("the return value is not JSON-serialisable (%s): return dicts, lists, "
                            "strings, numbers, booleans or None" % e) from None
    except updraft.Skip as e:
        _write(result, {"skip": str(e)})
        sys.stdout.flush()
        os._exit(EXIT_SKIP)
    except SystemExit:
        raise
    except BaseException as e:
        frames = traceback.extract_tb(e.__traceback__)
        frames = [fr for fr in frames if not fr.filename.endswith("runner.py")] or frames
        tb = "".join(traceback.format_list(frames[-5:]))
        _write(result, {"error": {"type": type(e).__name__, "message": str(e), "traceback": tb}})
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(1)


if __name__ == "__main__":
    main()
