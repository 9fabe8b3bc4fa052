"""The DICOMweb core: no typer, no rich.

* ``http.py``: the HTTP session (httpx), authentication options, and the
  mapping of HTTP and transport failures onto the shared exit-code table;
* ``multipart.py``: multipart/related bodies, read as they stream
  (python-multipart's parser) and written from disk for STOW-RS;
* ``qido.py`` (QIDO-RS), ``retrieve.py`` (WADO-RS), ``stow.py`` (STOW-RS),
  ``uri.py`` (WADO-URI).

httpx is imported only here, so that other commands never pay for it.
"""
