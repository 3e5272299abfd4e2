from topfive.machine import differences, fingerprint, fingerprint_key, isa_flags


def test_fingerprint_names_the_cpu_features_and_packages():
    fp = fingerprint(threads=2)
    assert fp["isa"] == list(isa_flags()) and fp["threads"] == 2
    assert fp["packages"]["torch"] and fp["logical_cpus"] >= 1
    assert differences(fp, fingerprint(threads=2)) == []
    assert fingerprint_key(fp) == fingerprint_key(dict(fp))


def test_differences_say_what_changed_and_ignore_the_kernel_build():
    fp = fingerprint()
    other = dict(fp, isa=["avx2"], platform="Linux-another-kernel", packages=dict(fp["packages"], onnxruntime="0.1"))
    changed = differences(fp, other)
    assert any(c.startswith("isa:") for c in changed)
    assert any(c.startswith("onnxruntime:") for c in changed)
    assert not any(c.startswith("platform") for c in changed)
