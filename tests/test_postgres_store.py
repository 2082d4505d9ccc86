"""The annotation store on a real PostgreSQL server (started by tests/postgres_support.py).

The backend-neutral store tests run here again on PostgreSQL; concurrent writers (threads and
processes) lose nothing; a server that goes down gives one line and takes writes again when it
is back.
"""
from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from core.annotations.store import MIGRATIONS, AnnotationStore, DatabaseUnavailable
from core.errors import DisplasiaError
from tests import postgres_support
from tests.test_annotations_concurrency import SAVES, _versions, _writer, four_threaded_writers_lose_nothing
from tests.test_annotations_schema import SHA, make_annotation
from tests.test_annotations_store import (  # noqa: F401  (collected again with the PostgreSQL store)
    test_annotated_images_lists_paths_annotators_and_versions,
    test_annotated_shas_finds_the_next_unread_cell,
    test_each_save_is_a_new_version_and_latest_wins,
    test_identity_of_the_latest_version_is_kept_per_annotator,
    test_import_does_not_resurrect_an_older_reading,
    test_only_if_changed_skips_identical_autosaves,
    test_same_hash_with_other_size_is_refused,
    test_seed_from_dir_is_idempotent_and_skips_bad_files,
    test_stored_document_is_the_project_json,
    test_two_annotators_never_overwrite_each_other,
)

pytestmark = pytest.mark.postgres
postgres_server = postgres_support.postgres_server
postgres_url = postgres_support.postgres_url


@pytest.fixture
def store(postgres_url):
    s = AnnotationStore(postgres_url)
    yield s
    s.close()


def test_schema_is_created_on_postgres(store):
    assert store.engine.dialect.name == "postgresql"
    assert store.schema_version == len(MIGRATIONS)
    names = set(inspect(store.engine).get_table_names())
    assert {"schema_version", "images", "image_paths", "annotators", "annotation_versions"} <= names


def test_plain_postgresql_url_uses_psycopg(postgres_url):
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with AnnotationStore(plain) as s:
        assert s.engine.dialect.driver == "psycopg"
        assert s.save(make_annotation()) == 1


def test_threads_on_postgres_lose_nothing(store):
    four_threaded_writers_lose_nothing(store)


@pytest.mark.slow
def test_processes_on_postgres_lose_nothing(postgres_url):
    # The writers open the fresh database at the same time: the schema is created once.
    procs = [_writer(postgres_url, name, SAVES) for name in ("ana", "ben", "cy", "cy")]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    with AnnotationStore(postgres_url) as store:
        assert _versions(store, "ana") == list(range(1, SAVES + 1))
        assert _versions(store, "cy") == list(range(1, 2 * SAVES + 1))
        cy_seen = [int(x) for out, _ in outs[2:] for x in out.split()[1:]]
        assert sorted(cy_seen) == list(range(1, 2 * SAVES + 1))
        assert store.count_versions() == 4 * SAVES
        with store.engine.connect() as conn:
            assert conn.execute(text("select count(*) from schema_version")).scalar() == len(MIGRATIONS)


def test_server_down_gives_one_line_and_writes_resume(postgres_server, postgres_url):
    store = AnnotationStore(postgres_url)
    assert store.save(make_annotation(note="before")) == 1
    postgres_server.stop()
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            store.save(make_annotation(note="while down"))
        message = str(caught.value)
        assert "\n" not in message and "not reachable" in message
        assert isinstance(caught.value, DisplasiaError)
        with pytest.raises(DatabaseUnavailable):
            store.latest(SHA, "demo-rater")
        with pytest.raises(DatabaseUnavailable):
            AnnotationStore(postgres_url)
    finally:
        postgres_server.start()
    assert store.save(make_annotation(note="while down")) == 2
    assert store.latest(SHA, "demo-rater").note == "while down"
    store.close()


def test_password_is_not_shown_in_the_error(postgres_server):
    url = f"postgresql+psycopg://nobody:s3cret-pw@127.0.0.1:{postgres_server.port}/nowhere"
    with pytest.raises(DatabaseUnavailable) as caught:
        AnnotationStore(url)
    assert "s3cret-pw" not in str(caught.value)
