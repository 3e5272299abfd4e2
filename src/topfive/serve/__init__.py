"""`topfive serve`: the web page and its HTTP API, on the library's public API (an extra:
`pip install 'topfive[web]'`). `app.create_app(classifiers, settings)` is the ASGI app; nothing
here is imported by the rest of the package."""
