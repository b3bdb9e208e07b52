"""The supervised runtime: queue runners, completer, maintenance and their supervisor."""
