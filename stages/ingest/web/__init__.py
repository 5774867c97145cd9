"""Web page plumbing shared by the WARC/WET and HTML readers, one concern per module: `records`
(member-aware gzip, WARC records), `http` (responses, transfer encodings), `charset` (detection and
decoding), `extract` (HTML to main text). Nothing is imported here, so importing one loads only it."""
