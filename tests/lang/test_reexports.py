"""`import sglang as sgl` re-exports exactly sglang.lang's public names (the top-level list is
kept separately so that `import sglang` stays light; this keeps the two in step)."""

import sglang
import sglang.lang


def test_top_level_names_equal_sglang_lang_all():
    assert sorted(sglang.LANG_NAMES) == sorted(sglang.lang.__all__)
    for name in sglang.LANG_NAMES:
        assert getattr(sglang, name) is getattr(sglang.lang, name)
