"""A real-tokenizer 128k vocabulary without a download: a byte-level BPE trained here.

Hub downloads are not possible on the benchmark machines, and a synthetic vocabulary (random
words) shares far fewer prefixes than a real tokenizer's. `trained_tokenizer` trains a
byte-level BPE (the GPT-2 / Llama-3 kind: ByteLevel pre-tokenizer and decoder, 256-byte
initial alphabet) with the `tokenizers` library on text already on disk: the Python sources
and docs of the running interpreter's site-packages, files in sorted order until
`corpus_mb` megabytes. The result is cached as JSON under benchmarks/out/ (gitignored: it is
megabytes), keyed by vocabulary size and corpus size, and trained again only when missing.

    python benchmarks/trained_vocab.py --vocab-size 131072 --corpus-mb 40   # train / show
"""

from __future__ import annotations

import argparse
import sysconfig
import time
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT_DIR = Path(__file__).resolve().parent / "out"
EOS = "<|endoftext|>"
SUFFIXES = (".py", ".md", ".rst", ".txt", ".pyi")
MAX_FILE_BYTES = 1 << 20  # skip generated giants (vendored tables, minified data)


def corpus_files(corpus_mb: float, root: Path | None = None) -> list[Path]:
    """Text files under `root` (site-packages by default), sorted, about `corpus_mb` MB."""
    root = root or Path(sysconfig.get_paths()["purelib"])
    budget, files = int(corpus_mb * 1e6), []
    for path in sorted(root.rglob("*")):
        if path.suffix not in SUFFIXES or not path.is_file():
            continue
        size = path.stat().st_size
        if 0 < size <= MAX_FILE_BYTES:
            files.append(path)
            budget -= size
            if budget <= 0:
                break
    if not files:
        raise ValueError(f"no text files under {root} to train a tokenizer on")
    return files


def cache_path(vocab_size: int, corpus_mb: float) -> Path:
    return OUT_DIR / f"bpe_{vocab_size}_{corpus_mb:g}mb.json"


def trained_tokenizer(vocab_size: int = 131072, corpus_mb: float = 40.0,
                      verbose: bool = True) -> Tokenizer:
    """The cached byte-level BPE for (`vocab_size`, `corpus_mb`), trained first if missing.
    Its vocabulary may fall short of `vocab_size` when the corpus has too few distinct
    pieces; `get_vocab_size()` says what it reached."""
    path = cache_path(vocab_size, corpus_mb)
    if path.exists():
        return Tokenizer.from_file(str(path))
    files = corpus_files(corpus_mb)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    start = time.perf_counter()
    tokenizer.train([str(f) for f in files], trainer)
    if verbose:
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"trained a byte-level BPE of {tokenizer.get_vocab_size():,} tokens on "
              f"{len(files):,} files ({mb:.1f} MB) in {time.perf_counter() - start:.0f} s")
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=131072)
    parser.add_argument("--corpus-mb", type=float, default=40.0)
    args = parser.parse_args()
    tokenizer = trained_tokenizer(args.vocab_size, args.corpus_mb)
    sample = "def main() -> None:\n    return {'key': [1, 2, 3]}"
    print(f"{cache_path(args.vocab_size, args.corpus_mb)}: {tokenizer.get_vocab_size():,} "
          f"tokens; {sample!r} -> {tokenizer.encode(sample).tokens}")


if __name__ == "__main__":
    main()
