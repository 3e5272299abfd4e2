"""Label -> ImageNet-1k class sets through WordNet 3.0, and WordNet distances."""

import pytest

from topfive.imagenet import classes
from topfive.eval.wordnet import (
    AmbiguousLabel,
    LabelError,
    UnknownLabel,
    distance_to_set,
    explain,
    resolve_label,
    resolve_labels,
    synsets,
)


def test_dog_expands_to_the_118_dog_classes():
    s = resolve_label("dog")
    assert s.how == "wordnet" and s.synset == "n02084071"
    assert s.indices == frozenset(range(151, 269))


def test_domestic_cat_is_the_five_house_cats():
    assert resolve_label("domestic cat").indices == {281, 282, 283, 284, 285}
    assert resolve_label("domestic_cat").indices == {281, 282, 283, 284, 285}


def test_horse_is_sorrel_only():
    s = resolve_label("horse")
    assert s.indices == {339} and classes()[339].name == "sorrel"
    assert resolve_label("Horses").indices == {339}  # WordNet base form of a plural folder name


@pytest.mark.parametrize(
    "label, expected",
    [("339", {339}), ("n02389026", {339}), ("sorrel", {339}), ("ice cream", {928}),
     ("station wagon", {436}), ("beach_wagon", {436}), ("harp", {594}), ("0", {0})],
)
def test_index_wnid_and_class_names(label, expected):
    assert resolve_label(label).indices == expected


def test_a_wnid_above_the_classes_expands_like_its_word():
    assert resolve_label("n02084071").indices == resolve_label("dog").indices


def test_most_frequent_sense_with_classes_below_it_is_taken():
    # "cat" sense 1 is the true cat (felids incl. lynx, cougar); the other senses are kept in `other_senses`
    s = resolve_label("cat")
    assert s.synset == "n02121620" and {281, 285, 286, 287} <= s.indices
    assert s.other_senses  # e.g. the guy, the whip, the vomit... those that reach a class
    assert "not taken" in explain("cat")


@pytest.mark.parametrize("label, wnids", [("crane", {"n02012849", "n03126707"}), ("Cardigan", {"n02113186", "n02963159"})])
def test_a_word_naming_several_classes_is_ambiguous(label, wnids):
    with pytest.raises(AmbiguousLabel) as e:
        resolve_label(label)
    assert set(e.value.choices) == wnids
    for w in wnids:
        assert w in str(e.value)


def test_unknown_label_lists_close_matches():
    with pytest.raises(UnknownLabel) as e:
        resolve_label("hrose")
    assert "horse" in e.value.choices and "horse" in str(e.value)
    with pytest.raises(UnknownLabel):
        resolve_label("1000")
    with pytest.raises(UnknownLabel):
        resolve_label("n99999999")


def test_all_bad_labels_are_reported_together():
    with pytest.raises(LabelError) as e:
        resolve_labels(["dog", "hrose", "crane", "horse"])
    assert "hrose" in str(e.value) and "crane" in str(e.value) and "2 labels" in str(e.value)


def test_table_covers_classes_and_reaches_entity():
    table = synsets()
    assert len(table) == 1860
    entity = "n00001740"
    for c in classes()[::97]:
        w, seen = c.wnid, set()
        while table[w].hypernyms and w not in seen:
            seen.add(w)
            w = table[w].hypernyms[0]
        assert w == entity


def test_mistake_severity_ranks_ox_above_great_dane_for_a_horse():
    sorrel, ox, great_dane, oxcart = 339, 345, 246, 690
    assert distance_to_set(sorrel, {sorrel}) == 0
    assert distance_to_set(282, {281}) == 1  # tiger cat for a tabby: they meet at domestic cat
    assert distance_to_set(ox, {sorrel}) == 4  # meet at ungulate
    assert distance_to_set(great_dane, {sorrel}) == 5  # meet only at placental mammal
    assert distance_to_set(oxcart, {sorrel}) > distance_to_set(great_dane, {sorrel})
    assert distance_to_set(great_dane, {sorrel, ox}) == 5  # the nearest accepted class counts