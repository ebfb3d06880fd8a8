"""`maskgit-editor weights list|download|convert|verify`: headless model management."""

from __future__ import annotations

import argparse

from models import registry


def weights(args: argparse.Namespace) -> int:
    return {"list": _list, "download": _download, "convert": _convert, "verify": _verify}[
        args.action
    ](args)


def _list(args: argparse.Namespace) -> int:
    rows = [("name", "present", "size", "licence", "source")]
    for name, m in registry.KNOWN.items():
        path = registry.model_path(name)
        size = f"{path.stat().st_size / 1e6:.0f} MB" if path.is_file() else f"~{m.approx_mb} MB"
        rows.append((name, "yes" if path.is_file() else "no", size, m.licence, m.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"\nofficial weights go to {registry.cache_dir()}")
    return 0


def _need_name(args: argparse.Namespace) -> registry.KnownModel:
    if not args.name or args.name not in registry.KNOWN:
        raise ValueError(f"name one of: {', '.join(registry.KNOWN)}")
    return registry.KNOWN[args.name]


def _download(args: argparse.Namespace) -> int:
    from models.checkpoint import load_official, save
    from models.download import fetch

    model = _need_name(args)
    if not model.files:
        print(f"{model.name} ships with the app; nothing to download")
        return 0
    raw = registry.cache_dir() / "downloads"
    paths = []
    for f in model.files:
        known = registry.recorded_digest(f.filename) or {}
        dest = raw / f.filename
        if dest.is_file() and known:
            print(f"{f.filename}: already downloaded")
        else:
            dest.unlink(missing_ok=True)
            fetch(f.url, dest, size=known.get("size"), sha256=known.get("sha256"))
        if not known:  # trust on first use: later downloads must match this one
            from models.download import sha256_of

            registry.record_digest(f.filename, dest.stat().st_size, sha256_of(dest))
        paths.append(dest)
    out = registry.model_path(model.name)
    print(f"converting to {out} ...")
    save(load_official(paths[0], paths[1], name=model.name), out)  # atomic
    print(f"{model.name}: ready ({out.stat().st_size / 1e6:.0f} MB)")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from models.checkpoint import load_official, save

    if not (args.tokenizer and args.transformer and args.out):
        raise ValueError("convert needs --tokenizer FILE --transformer FILE --out FILE")
    from editor.batch import refuse_overwriting

    refuse_overwriting([args.out], [args.tokenizer, args.transformer])
    model = load_official(args.tokenizer, args.transformer)
    save(model, args.out)  # atomic
    print(f"wrote {args.out} ({model.config.name}, {model.config.window} px window)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from models.checkpoint import load
    from models.download import sha256_of

    names = [args.name] if args.name else registry.available()
    bad = 0
    for name in names:
        path = registry.resolve(name)
        model = registry.KNOWN.get(name)
        for f in model.files if model else ():
            raw = registry.cache_dir() / "downloads" / f.filename
            known = registry.recorded_digest(f.filename)
            if raw.is_file() and known and sha256_of(raw) != known["sha256"]:
                print(f"{name}: {f.filename} does not match its recorded SHA-256")
                bad += 1
        m = load(path)
        n = sum(p.numel() for p in m.parameters())
        print(f"{name}: ok ({m.config.window} px window, {n / 1e6:.1f} M parameters, {path})")
    return 1 if bad else 0
