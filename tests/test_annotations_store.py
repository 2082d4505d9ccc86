"""Versioned annotation store: migrations, versions, annotators, seeding."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, inspect, text

from core.annotations import store as _store_module
from core.annotations.schema import Graded
from core.annotations.store import MIGRATIONS, AnnotationStore, migrate
from core.errors import DisplasiaError
from tests.test_annotations_schema import SHA, make_annotation


@pytest.fixture
def store(tmp_path):
    s = AnnotationStore(f"sqlite:///{tmp_path / 'a.sqlite'}")
    yield s
    s.close()


def test_migration_from_an_empty_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'new.sqlite'}"
    store = AnnotationStore(url)
    assert store.schema_version == len(MIGRATIONS) == 2
    names = set(inspect(store.engine).get_table_names())
    assert {"schema_version", "images", "image_paths", "annotators", "annotation_versions"} <= names
    with store.engine.connect() as conn:
        assert conn.execute(text("select version from schema_version")).scalars().all() == [1, 2]
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.close()
    # Opening again applies nothing twice.
    again = AnnotationStore(url)
    with again.engine.connect() as conn:
        assert conn.execute(text("select count(*) from schema_version")).scalar() == 2
    again.close()


def test_migrations_run_in_order_once(tmp_path):
    calls = []
    steps = [lambda c: calls.append(1), lambda c: calls.append(2)]
    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    assert migrate(engine, steps[:1]) == 1
    assert migrate(engine, steps) == 2
    assert migrate(engine, steps) == 2
    assert calls == [1, 2]


def test_newer_database_is_refused_with_a_clear_message(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    migrate(engine, [lambda c: None] * 3)
    with pytest.raises(DisplasiaError, match="newer than this program"):
        AnnotationStore(f"sqlite:///{tmp_path / 'm.sqlite'}")


def test_each_save_is_a_new_version_and_latest_wins(store):
    a = make_annotation()
    assert store.save(a) == 1
    b = a.with_updates(cytoplasm=Graded("transparent", 3), updated=None)
    assert store.save(b) == 2
    latest = store.latest(SHA, "demo-rater")
    assert latest.cytoplasm == Graded("transparent", 3)
    assert latest.updated is not None           # stamped by the store
    assert [v.version for v in store.history(SHA)] == [1, 2]
    assert store.history(SHA)[0].annotation == a


def test_two_annotators_never_overwrite_each_other(store):
    store.save(make_annotation(annotator="ana"))
    store.save(make_annotation(annotator="ben", condition="dysplastic"))
    store.save(make_annotation(annotator="ana", note="second look"))
    both = store.latest_for_image(SHA)
    assert list(both) == ["ana", "ben"]
    assert both["ana"].note == "second look"
    assert both["ben"].condition.value == "dysplastic"
    assert store.latest_version(SHA, "ben") == 1
    assert store.latest(SHA, "nobody") is None


def test_only_if_changed_skips_identical_autosaves(store):
    a = make_annotation()
    assert store.save(a, only_if_changed=True) == 1
    assert store.save(a.with_updates(updated=None), only_if_changed=True) == 1
    assert store.save(a.with_updates(note="x"), only_if_changed=True) == 2
    assert store.count_versions() == 2


def test_import_does_not_resurrect_an_older_reading(store):
    a = make_annotation()
    assert store.import_annotation(a) == 1
    store.save(a.with_updates(note="edited"))
    assert store.import_annotation(a) is None
    assert store.latest(SHA, "demo-rater").note == "edited"


def test_annotated_images_lists_paths_annotators_and_versions(store):
    store.save(make_annotation(annotator="ana"), path="/data/TN/TN_SNE_0000001.jpg")
    store.save(make_annotation(annotator="ben"))
    store.save(make_annotation(image="other.jpg", image_sha256="cd" * 32))
    entries = store.annotated_images()
    assert [e.image for e in entries] == ["TN_SNE_0000001.jpg", "other.jpg"]
    first = entries[0]
    assert first.annotators == ("ana", "ben") and first.versions == 2
    assert set(first.paths) == {"/data/TN/TN_SNE_0000001.jpg", "TN_SNE_0000001.jpg"}
    assert store.annotators() == ["ana", "ben", "demo-rater"]


def test_same_hash_with_other_size_is_refused(store):
    store.save(make_annotation())
    with pytest.raises(DisplasiaError, match="in the database"):
        store.save(make_annotation(image_size=(300, 300), shapes=()))


def test_seed_from_dir_is_idempotent_and_skips_bad_files(store, tmp_path):
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "a.json").write_text(make_annotation().to_json_text())
    (folder / "b.json").write_text(make_annotation(annotator="ben").to_json_text())
    (folder / "bad.json").write_text('{"schema": "displasia-annotation/1"}')
    (folder / "junk.json").write_text("not json")
    first = store.seed_from_dir(folder)
    assert first.imported == ("a.json", "b.json")
    assert [name for name, _ in first.skipped] == ["bad.json", "junk.json"]
    assert "lacks field" in first.skipped[0][1]
    second = store.seed_from_dir(folder)
    assert second.imported == () and second.unchanged == ("a.json", "b.json")
    assert store.count_versions() == 2


def test_stored_document_is_the_project_json(store):
    a = make_annotation()
    store.save(a)
    with store.engine.connect() as conn:
        doc = json.loads(conn.execute(text("select document from annotation_versions")).scalar())
    assert doc == a.to_json()


def test_in_memory_url_and_bad_url():
    s = AnnotationStore("sqlite://")
    s.save(make_annotation())
    assert s.count_versions() == 1
    with pytest.raises(DisplasiaError, match="not a database URL"):
        AnnotationStore("::nonsense::")


def test_annotated_shas_finds_the_next_unread_cell(store):
    store.save(make_annotation(annotator="ana"))
    store.save(make_annotation(annotator="ben", image_sha256="cd" * 32))
    assert store.annotated_shas("ana") == {SHA}
    assert store.annotated_shas() == {SHA, "cd" * 32}
    queue = ["cd" * 32, SHA, "ef" * 32]
    assert next(s for s in queue if s not in store.annotated_shas("ana")) == "cd" * 32


def test_a_version_1_database_gains_the_identity_column_and_keeps_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as conn:            # the schema as migration 1 created it before migration 2
        conn.exec_driver_sql("create table schema_version (version integer primary key, applied_at varchar(40) not null)")
        conn.exec_driver_sql("insert into schema_version values (1, '2026-11-01')")
        for table in ("images", "image_paths", "annotators"):
            getattr(_store_module, table).create(conn)
        conn.exec_driver_sql(
            "create table annotation_versions (id integer primary key, image_id integer not null, "
            "annotator_id integer not null, version integer not null, image_name varchar(255) not null, "
            "saved_at varchar(40) not null, updated varchar(40) not null, total integer not null, "
            "condition varchar(16) not null, content_sha256 varchar(64) not null, document text not null)")
    engine.dispose()
    store = AnnotationStore(url)
    assert store.schema_version == 2
    assert "identity" in {c["name"] for c in inspect(store.engine).get_columns("annotation_versions")}
    assert store.save(make_annotation(), identity="oidc") == 1
    assert store.latest_identities() == {(SHA, "demo-rater"): "oidc"}
    store.close()


def test_identity_of_the_latest_version_is_kept_per_annotator(store):
    store.save(make_annotation(annotator="ana"), identity="self-declared")
    store.save(make_annotation(annotator="ana", note="logged in now"), identity="password")
    store.import_annotation(make_annotation(annotator="ben"))
    assert store.latest_identities() == {(SHA, "ana"): "password", (SHA, "ben"): None}
    with pytest.raises(DisplasiaError, match="identity"):
        store.save(make_annotation(), identity="x" * 40)


def test_export_marks_self_declared_annotators_unverified(store, tmp_path):
    import csv

    from core.annotations.export import export_store

    store.save(make_annotation(annotator="ana"), identity="oidc")
    store.save(make_annotation(annotator="bob"), identity="self-declared")
    store.import_annotation(make_annotation(annotator="demo-rater"))
    export_store(store, csv_path=tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as fh:
        verified = {row["annotator"]: row["annotator_verified"] for row in csv.DictReader(fh)}
    assert verified == {"ana": "yes", "bob": "no", "demo-rater": "no"}
