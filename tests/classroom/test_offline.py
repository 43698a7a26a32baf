from dmlnotes.classroom import offline


def kinds(text):
    return [kind for kind, _ in offline.external_references(text)]


def test_every_way_a_page_loads_from_the_internet_is_found():
    assert kinds('<script defer src="https://cdn.example/x.js"></script>') == ["script"]
    assert kinds("<script src='//cdn.example/x.js'></script>") == ["script"]
    assert kinds('<link rel="stylesheet" href="https://cdn.example/x.css">') == ["stylesheet"]
    assert kinds('<link href="http://cdn.example/x.css" rel="stylesheet">') == ["stylesheet"]
    assert kinds("@import 'https://fonts.example/css';") == ["@import"]
    assert kinds("@font-face { src: url(https://fonts.example/a.woff2) }") == ["url()"]
    assert kinds('<script type="module">import m from "https://cdn.example/m.mjs";</script>') == ["module import"]


def test_local_files_links_and_inline_data_are_fine():
    page = (
        '<script src="_static/x.js"></script><link rel="stylesheet" href="../_static/a.css">'
        '<a href="https://github.com/">a link loads nothing</a><link rel="next" href="https://example.org/">'
        "<style>.i { background: url(\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'%3E\") }</style>"
        "@import url(./fonts/source-sans-pro.css);"
    )
    assert offline.external_references(page) == []


def test_scan_folder_reports_html_and_css_files(tmp_path):
    (tmp_path / "ok.html").write_text('<script src="vendor/x.js"></script>')
    (tmp_path / "theme").mkdir()
    (tmp_path / "theme" / "bad.css").write_text("@import url(https://fonts.example/css);")
    (tmp_path / "x.js").write_text('load("https://ignored.example/")')  # scripts are not scanned
    found = offline.scan_folder(tmp_path)
    assert list(found) == [tmp_path / "theme" / "bad.css"]
    assert "theme/bad.css: @import" in offline.report(found, tmp_path)
