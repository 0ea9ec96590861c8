"""The production storage path (django-storages + boto3) against a real S3-compatible server."""

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from moto.server import ThreadedMotoServer

from tests.conftest import free_port

BUCKET = "fablab-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture
def s3_storage(settings, s3_endpoint):
    endpoint, client = s3_endpoint
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET, "endpoint_url": endpoint, "region_name": "us-east-1",
                "access_key": "testing", "secret_key": "testing", "default_acl": None,
                "querystring_auth": True, "file_overwrite": False,
            },
        },
    }
    return client


def test_write_read_list_delete_through_s3(s3_storage):
    name = default_storage.save("org-7/models/part.gcode", ContentFile(b"G28\nG1 X10\n"))
    assert name == "org-7/models/part.gcode"
    stored = s3_storage.get_object(Bucket=BUCKET, Key=name)["Body"].read()
    assert stored == b"G28\nG1 X10\n"
    with default_storage.open(name, "rb") as handle:
        assert handle.read() == b"G28\nG1 X10\n"
    assert default_storage.size(name) == 11
    assert "part.gcode" in default_storage.listdir("org-7/models")[1]
    url = default_storage.url(name)
    assert "X-Amz-Signature" in url or "Signature" in url
    second = default_storage.save("org-7/models/part.gcode", ContentFile(b"other"))
    assert second != name  # never overwrites an existing file
    default_storage.delete(name)
    default_storage.delete(second)
    assert not default_storage.exists(name)


@pytest.mark.django_db
def test_health_check_uses_s3(client, s3_storage):
    body = client.get("/api/v1/health").json()
    assert body["checks"]["storage"] == {**body["checks"]["storage"], "ok": True}
    assert s3_storage.list_objects_v2(Bucket=BUCKET, Prefix="health/").get("KeyCount", 0) == 0


def test_environment_selects_s3(manage, s3_endpoint):
    """With a bucket configured, a fresh process stores files in it: no code change."""
    endpoint, client = s3_endpoint
    script = (
        "from django.core.files.storage import default_storage;"
        "from django.core.files.base import ContentFile;"
        "print(default_storage.save('org-1/from-env.txt', ContentFile(b'via env')))"
    )
    result = manage("shell", "-v", "0", "-c", script, env={
        "AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_ENDPOINT_URL": endpoint, "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_LOCATION": "tenant-files", **CREDENTIALS,
    })
    assert result.stdout.strip() == "org-1/from-env.txt"
    body = client.get_object(Bucket=BUCKET, Key="tenant-files/org-1/from-env.txt")["Body"].read()
    assert body == b"via env"
