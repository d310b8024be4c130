"""Password hashes: stored Werkzeug hashes keep verifying after the core stopped using it."""

from werkzeug.security import check_password_hash, generate_password_hash

from geo311.accounts import hash_password, verify_password


def test_hashes_written_before_still_verify():
    for method in ("scrypt", "pbkdf2:sha256:1000"):
        stored = generate_password_hash("a long enough secret", method=method)
        assert verify_password(stored, "a long enough secret")
        assert not verify_password(stored, "a long enough secreT")


def test_new_hashes_are_salted_scrypt_that_werkzeug_reads():
    one, two = hash_password("a long enough secret"), hash_password("a long enough secret")
    assert one != two and one.startswith("scrypt:32768:8:1$")
    assert check_password_hash(one, "a long enough secret")
    assert not verify_password(one, "another secret entirely")


def test_malformed_hash_never_verifies():
    assert not verify_password("not-a-hash", "anything")
    assert not verify_password("md5$salt$abc", "anything")
