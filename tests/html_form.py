"""The fields an HTML form submits, read from a rendered page."""

from __future__ import annotations

from html.parser import HTMLParser


class FormFields(HTMLParser):
    """Collect the fields one form submits, as a browser would without a click.

    Buttons and file inputs are left out, checkboxes and radios count only
    when checked, and a select sends its selected option or else its first one.
    """

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str | None, bool, str]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value if value is not None else "" for name, value in attrs}
        if tag == "form" and attributes.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = attributes.get("name")
        if tag == "input" and name:
            kind = attributes.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attributes:
                    self.fields.append((name, attributes.get("value") or "on"))
            elif kind not in ("submit", "button", "image", "reset", "file"):
                self.fields.append((name, attributes.get("value", "")))
        elif tag == "select" and name:
            self._select = name
            self._options = []
        elif tag == "option" and self._select is not None:
            self._options.append(
                (attributes.get("value"), "selected" in attributes, "")
            )
        elif tag == "textarea" and name:
            self._textarea = name
            self._text = ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data
        elif self._select is not None and self._options:
            value, selected, text = self._options[-1]
            self._options[-1] = (value, selected, text + data)

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            selected = [option for option in self._options if option[1]]
            chosen = selected or self._options[:1]
            if chosen:
                value, _, text = chosen[0]
                self.fields.append(
                    (self._select, value if value is not None else text.strip())
                )
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # Browsers drop one newline right after <textarea>, but html.parser keeps it.
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def submitted_fields(page: str, form_id: str) -> list[tuple[str, str]]:
    """Return the (name, value) pairs the form with id `form_id` submits, in order."""
    parser = FormFields(form_id)
    parser.feed(page)
    return parser.fields
