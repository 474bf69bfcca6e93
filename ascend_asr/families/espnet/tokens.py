"""ESPnet token lists: the profile vocabulary they give, and ESPnet's own token-to-text rules.

ESPnet's CTC blank is `<blank>` at id 0; the list also holds `<unk>` and `<sos/eos>` (last).
Char models write a space as `<space>` (CharTokenizer.tokens2text); BPE models mark a word start with
`▁` (sentencepiece's decode_pieces). The profile vocabulary spells those as text: `<space>` as " " and
`▁` as a leading " ", so the pipeline's plain concatenation gives ESPnet's text (up to its outer spaces).
Decoding BPE needs no sentencepiece; checking a token list against its bpe.model does (the `sentencepiece`
extra).
"""
from __future__ import annotations

from ...errors import ProfileError

WORD_START = "\u2581"  # sentencepiece's "▁"


def profile_labels(token_list: list[str], token_type: str) -> list[str]:
    """The labels (blank at 0 kept) for a profile's vocabulary."""
    if not token_list or token_list[0] != "<blank>":
        raise ProfileError(f"ESPnet token_list starts with {token_list[:1]!r}, not '<blank>': ESPnet's CTC blank is "
                           "id 0, named <blank>")
    if token_type == "char":
        labels = [" " if t == "<space>" else t for t in token_list]
    elif token_type == "bpe":
        labels = [t.replace(WORD_START, " ") for t in token_list]
    else:
        raise ProfileError(f"ESPnet token_type {token_type!r}: only char and bpe are implemented")
    repeated = sorted({t for t in labels if labels.count(t) > 1})
    if repeated:
        raise ProfileError(f"ESPnet token_list: {repeated!r} appear twice once spaces are written as text")
    return labels


def tokens_to_text(tokens: list[str], token_type: str) -> str:
    """ESPnet's text for `tokens` (blanks and repeats already removed)."""
    if token_type == "char":
        return "".join(" " if t == "<space>" else t for t in tokens)
    return "".join(tokens).replace(WORD_START, " ").strip()


def check_bpemodel(model_bytes: bytes, token_list: list[str], source: str) -> bool:
    """Every non-special token of the list is a piece of the sentencepiece model; False when sentencepiece
    (the `espnet` extra) is not installed and nothing was checked."""
    try:
        import sentencepiece as spm
    except ImportError:
        return False
    processor = spm.SentencePieceProcessor()
    processor.LoadFromSerializedProto(model_bytes)
    pieces = {processor.IdToPiece(i) for i in range(processor.GetPieceSize())}
    unknown = [t for t in token_list if not (t.startswith("<") and t.endswith(">")) and t not in pieces]
    if unknown:
        raise ProfileError(f"{source}: tokens {unknown[:5]} are not pieces of its bpe.model; the token list and the "
                           "BPE model come from different runs")
    return True
