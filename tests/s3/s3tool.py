#!/usr/bin/env python3
"""s3tool.py: a small S3 client for walkeep's tests, independent of walkeep's C code.

Tests look at an S3 repository with this tool, so that they never check the S3 driver
with itself. Python 3.11 standard library only; path-style addressing, AWS Signature
Version 4 with x-amz-content-sha256 always sent (the hex SHA-256 of the body).

Environment:
  S3_ENDPOINT     http://host:port or https://host:port (required)
  S3_ACCESS_KEY   access key id (required)
  S3_SECRET_KEY   secret access key (required)
  S3_REGION       region of the signature scope (default us-east-1)
  S3_CA_FILE      CA bundle for an https endpoint (default: the system's store)

Usage (LOCATION is s3://bucket/key-or-prefix; a prefix names a folder: "s3://b/p" is
everything under "p/", "s3://b" the whole bucket):
  s3tool.py mb BUCKET                    create a bucket (one already owned is fine)
  s3tool.py ls [-l] s3://b/prefix        every key under prefix, relative to it, sorted,
                                         one per line (-l: "SIZE KEY")
  s3tool.py cat s3://b/key               the object to stdout (binary)
  s3tool.py put s3://b/key               stdin to the object
  s3tool.py rm s3://b/key...             delete objects (a missing one is fine)
  s3tool.py rm-prefix s3://b/prefix      delete everything under prefix (batched
                                         multi-object delete) and abort the multipart
                                         uploads in progress there
  s3tool.py cp-prefix s3://b/src s3://b/dst   server-side copy of every object under src
  s3tool.py flip s3://b/key              flip the low bit of the byte in the middle
  s3tool.py uploads s3://b/prefix        multipart uploads in progress under prefix:
                                         "KEY UPLOADID" lines, KEY relative to prefix
  s3tool.py upload-start s3://b/key [N]  start a multipart upload of key and send part 1
                                         with N bytes (default 1024) of stdin-free filler;
                                         prints the upload id (a leftover of a killed write)
  s3tool.py exists s3://b/key            exit 0 if the object exists, 1 if not (HEAD)

Exit status: 0 on success; 1 for "exists" of a missing object; 2 with one line on stderr
for any other failure (an HTTP error names method, resource, status and S3 error code).
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import os
import ssl
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

PROG = "s3tool"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TIMEOUT = 120  # seconds per request


class S3Error(Exception):
    """A failure that ends the command: one line for stderr."""


class OutputGone(Exception):
    """Our stdout was closed by its reader (cat | head)."""


def fail(msg):
    raise S3Error(msg)


def quote(text, safe):
    # Unreserved characters (A-Z a-z 0-9 - _ . ~) are never encoded; UTF-8 otherwise.
    return urllib.parse.quote(text, safe=safe)


def strip_ns(tag):
    return tag.rsplit("}", 1)[-1]


def child_text(elem, name, default=""):
    for c in elem:
        if strip_ns(c.tag) == name:
            return c.text or ""
    return default


def children(elem, name):
    return [c for c in elem if strip_ns(c.tag) == name]


def error_code(body):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return ""
    if strip_ns(root.tag) == "Error":
        return child_text(root, "Code")
    return ""


class Client:
    def __init__(self):
        endpoint = os.environ.get("S3_ENDPOINT", "")
        self.access_key = os.environ.get("S3_ACCESS_KEY", "")
        self.secret_key = os.environ.get("S3_SECRET_KEY", "")
        self.region = os.environ.get("S3_REGION") or "us-east-1"
        if not endpoint or not self.access_key or not self.secret_key:
            fail("S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY must be set")
        u = urllib.parse.urlsplit(endpoint)
        if u.scheme not in ("http", "https") or not u.hostname:
            fail("S3_ENDPOINT must be http://host[:port] or https://host[:port]: %r" % endpoint)
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        default_port = (u.scheme == "https" and self.port == 443) or (
            u.scheme == "http" and self.port == 80)
        self.host_header = u.netloc if not default_port else u.hostname
        self.ca_file = os.environ.get("S3_CA_FILE") or None
        self.conn = None

    def connect(self):
        if self.conn is None:
            if self.scheme == "https":
                ctx = ssl.create_default_context(cafile=self.ca_file)
                self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT,
                                                        context=ctx)
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def sign(self, method, uri, query, headers, payload_hash, amz_date):
        date = amz_date[:8]
        names = sorted(headers)
        canonical_headers = "".join("%s:%s\n" % (n, " ".join(headers[n].split())) for n in names)
        signed = ";".join(names)
        canonical = "\n".join([method, uri, query, canonical_headers, signed, payload_hash])
        scope = "%s/%s/s3/aws4_request" % (date, self.region)
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("AWS4" + self.secret_key).encode()
        for part in (date, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        return "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
            self.access_key, scope, signed, sig)

    def request(self, method, bucket, key="", params=None, body=b"", headers=None, ok=(200,),
                stream_to=None):
        """Sends one signed request; returns (status, headers, body). A status not in ok is
        an error (S3Error). With stream_to, a 2xx body is written there instead."""
        uri = "/" + quote(bucket, "")
        if key:
            uri += "/" + quote(key, "/")
        items = sorted((quote(n, ""), quote(v, "")) for n, v in (params or {}).items())
        query = "&".join("%s=%s" % nv for nv in items)
        payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        what = "%s s3://%s/%s" % (method, bucket, key)
        for attempt in range(4):
            amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            h = {"host": self.host_header, "x-amz-date": amz_date,
                 "x-amz-content-sha256": payload_hash}
            for n, v in (headers or {}).items():
                h[n.lower()] = v
            send = dict(h)
            send["authorization"] = self.sign(method, uri, query, h, payload_hash, amz_date)
            if body or method in ("PUT", "POST"):
                send["content-length"] = str(len(body))
            try:
                conn = self.connect()
                conn.request(method, uri + ("?" + query if query else ""), body=body or None,
                             headers=send)
                resp = conn.getresponse()
                status = resp.status
                if status in ok and stream_to is not None and method != "HEAD":
                    while True:
                        chunk = resp.read(1 << 20)
                        if not chunk:
                            break
                        try:
                            stream_to.write(chunk)
                        except BrokenPipeError:
                            raise OutputGone() from None
                    data = b""
                else:
                    data = resp.read()
                rheaders = {k.lower(): v for k, v in resp.getheaders()}
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt < 3 and stream_to is None:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                fail("%s: %s" % (what, e or type(e).__name__))
            if status in (500, 502, 503, 504) and attempt < 3:
                time.sleep(0.2 * (attempt + 1))
                continue
            if status not in ok:
                code = error_code(data)
                fail("%s: HTTP %d%s" % (what, status, " " + code if code else ""))
            # Some 200 answers carry an error (CopyObject, CompleteMultipartUpload).
            if method in ("PUT", "POST") and data[:200].find(b"<Error>") >= 0:
                fail("%s: HTTP %d with error %s" % (what, status, error_code(data) or "?"))
            return status, rheaders, data
        fail("%s: no answer" % what)


def parse_location(loc):
    if not loc.startswith("s3://"):
        fail("not an s3:// location: %r" % loc)
    rest = loc[5:]
    bucket, _, key = rest.partition("/")
    if not bucket:
        fail("no bucket in %r" % loc)
    return bucket, key


def as_prefix(key):
    """The listing prefix of a folder name: "" or "p/"."""
    key = key.strip("/")
    return key + "/" if key else ""


def need_key(loc):
    bucket, key = parse_location(loc)
    if not key or key.endswith("/"):
        fail("no object key in %r" % loc)
    return bucket, key


def list_objects(c, bucket, prefix):
    """[(key, size)] of every object whose key starts with prefix."""
    out = []
    token = None
    while True:
        params = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
        if token:
            params["continuation-token"] = token
        _, _, data = c.request("GET", bucket, params=params)
        root = ET.fromstring(data)
        for cont in children(root, "Contents"):
            out.append((child_text(cont, "Key"), int(child_text(cont, "Size", "0") or 0)))
        truncated = child_text(root, "IsTruncated", "false").lower() == "true"
        token = child_text(root, "NextContinuationToken")
        if not truncated:
            break
        if not token:
            fail("GET s3://%s: truncated listing without a continuation token" % bucket)
    return out


def list_uploads(c, bucket, prefix):
    """[(key, upload id)] of the multipart uploads in progress under prefix."""
    out = []
    key_marker = upload_marker = None
    while True:
        params = {"uploads": "", "prefix": prefix}
        if key_marker is not None:
            params["key-marker"] = key_marker
            params["upload-id-marker"] = upload_marker or ""
        _, _, data = c.request("GET", bucket, params=params)
        root = ET.fromstring(data)
        for up in children(root, "Upload"):
            out.append((child_text(up, "Key"), child_text(up, "UploadId")))
        truncated = child_text(root, "IsTruncated", "false").lower() == "true"
        if not truncated:
            break
        key_marker = child_text(root, "NextKeyMarker")
        upload_marker = child_text(root, "NextUploadIdMarker")
        if not key_marker:
            fail("GET s3://%s?uploads: truncated listing without a marker" % bucket)
    return sorted(out)


def delete_keys(c, bucket, keys):
    for i in range(0, len(keys), 1000):
        batch = keys[i:i + 1000]
        root = ET.Element("Delete")
        ET.SubElement(root, "Quiet").text = "true"
        for k in batch:
            ET.SubElement(ET.SubElement(root, "Object"), "Key").text = k
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        _, _, data = c.request("POST", bucket, params={"delete": ""}, body=body,
                               headers={"Content-MD5": md5, "Content-Type": "application/xml"})
        errors = children(ET.fromstring(data), "Error")
        if errors:
            e = errors[0]
            fail("POST s3://%s?delete: %d keys not deleted, e.g. %s: %s" % (
                bucket, len(errors), child_text(e, "Key"), child_text(e, "Code")))


def get_object(c, bucket, key):
    _, _, data = c.request("GET", bucket, key)
    return data


def cmd_mb(c, args):
    if len(args) != 1:
        usage()
    c.request("PUT", args[0], ok=(200,))


def cmd_ls(c, args):
    long = False
    if args and args[0] == "-l":
        long = True
        args = args[1:]
    if len(args) != 1:
        usage()
    bucket, key = parse_location(args[0])
    prefix = as_prefix(key)
    entries = sorted((k[len(prefix):], size) for k, size in list_objects(c, bucket, prefix))
    out = sys.stdout
    for rel, size in entries:
        out.write("%d %s\n" % (size, rel) if long else rel + "\n")


def cmd_cat(c, args):
    if len(args) != 1:
        usage()
    bucket, key = need_key(args[0])
    c.request("GET", bucket, key, stream_to=sys.stdout.buffer)
    sys.stdout.buffer.flush()


def cmd_put(c, args):
    if len(args) != 1:
        usage()
    bucket, key = need_key(args[0])
    body = sys.stdin.buffer.read()
    c.request("PUT", bucket, key, body=body)


def cmd_rm(c, args):
    if not args:
        usage()
    for loc in args:
        bucket, key = need_key(loc)
        c.request("DELETE", bucket, key, ok=(200, 204))


def cmd_rm_prefix(c, args):
    if len(args) != 1:
        usage()
    bucket, key = parse_location(args[0])
    prefix = as_prefix(key)
    delete_keys(c, bucket, [k for k, _ in list_objects(c, bucket, prefix)])
    for k, upload_id in list_uploads(c, bucket, prefix):
        c.request("DELETE", bucket, k, params={"uploadId": upload_id}, ok=(200, 204, 404))


def cmd_cp_prefix(c, args):
    if len(args) != 2:
        usage()
    sb, sk = parse_location(args[0])
    db, dk = parse_location(args[1])
    src, dst = as_prefix(sk), as_prefix(dk)
    if sb == db and src and dst.startswith(src):
        fail("cp-prefix: %s is inside %s" % (args[1], args[0]))
    for k, _ in list_objects(c, sb, src):
        source = "/" + quote(sb, "") + "/" + quote(k, "/")
        c.request("PUT", db, dst + k[len(src):], headers={"x-amz-copy-source": source})


def cmd_flip(c, args):
    if len(args) != 1:
        usage()
    bucket, key = need_key(args[0])
    data = bytearray(get_object(c, bucket, key))
    if not data:
        fail("flip: s3://%s/%s is empty" % (bucket, key))
    data[len(data) // 2] ^= 1
    c.request("PUT", bucket, key, body=bytes(data))


def cmd_uploads(c, args):
    if len(args) != 1:
        usage()
    bucket, key = parse_location(args[0])
    prefix = as_prefix(key)
    for k, upload_id in list_uploads(c, bucket, prefix):
        sys.stdout.write("%s %s\n" % (k[len(prefix):], upload_id))


def cmd_upload_start(c, args):
    if len(args) not in (1, 2):
        usage()
    bucket, key = need_key(args[0])
    size = int(args[1]) if len(args) == 2 else 1024
    _, _, data = c.request("POST", bucket, key, params={"uploads": ""})
    upload_id = child_text(ET.fromstring(data), "UploadId")
    if not upload_id:
        fail("POST s3://%s/%s?uploads: no UploadId in the answer" % (bucket, key))
    if size > 0:
        c.request("PUT", bucket, key, params={"partNumber": "1", "uploadId": upload_id},
                  body=b"\xa5" * size)
    sys.stdout.write(upload_id + "\n")


def cmd_exists(c, args):
    if len(args) != 1:
        usage()
    bucket, key = need_key(args[0])
    status, _, _ = c.request("HEAD", bucket, key, ok=(200, 404))
    return 0 if status == 200 else 1


COMMANDS = {
    "mb": cmd_mb, "ls": cmd_ls, "cat": cmd_cat, "put": cmd_put, "rm": cmd_rm,
    "rm-prefix": cmd_rm_prefix, "cp-prefix": cmd_cp_prefix, "flip": cmd_flip,
    "uploads": cmd_uploads, "upload-start": cmd_upload_start, "exists": cmd_exists,
}


def usage():
    sys.stderr.write("usage: s3tool.py {%s} ARGS... (see the header of %s)\n" % (
        "|".join(COMMANDS), __file__))
    sys.exit(2)


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        usage()
    try:
        c = Client()
        rc = COMMANDS[argv[1]](c, argv[2:]) or 0
        c.close()
        sys.stdout.flush()
        return rc
    except S3Error as e:
        sys.stderr.write("%s %s: error: %s\n" % (PROG, argv[1], e))
        return 2
    except (BrokenPipeError, OutputGone):
        # The reader went away (cat | head): exit as a killed writer would, quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv))
