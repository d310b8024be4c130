"""What mail to residents links to: one-click unsubscribe (RFC 8058) and the survey on close.

Both pages are reached by a signed link, which is the credential (so no CSRF token):
they are kept out of caches and referrer logs.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, make_response, render_template, request

from geo311.errors import Conflict, InvalidRequest
from geo311.following import confirm_follow, follow_request_of
from geo311.notifications import (
    DECLARED_TAGS,
    answer_survey,
    language_of,
    mask_address,
    read_unsubscribe_token,
    survey_of,
)
from geo311_web import state

bp = Blueprint("notify", __name__)


def _address(token: str) -> str:
    """The address a signed link stands for; a tampered or unknown link is a 400."""
    found = state().store.outbox.get(read_unsubscribe_token(token, current_app.secret_key or ""))
    if found is None:
        raise InvalidRequest("this unsubscribe link is not valid")
    return str(found["email"])


#: The page that confirms a follow, in each language mail is written in.
FOLLOW_WORDS: dict[str, dict[str, str]] = {
    "en": {"title": "Follow a request", "ask": "Send the updates of request {number} "
           "({service}) to {masked}?", "confirm": "Confirm",
           "done": "{masked} now follows request {number}. Every message has a link to stop.",
           "track": "See the request"},
    "es": {"title": "Seguir una solicitud", "ask": "¿Enviar las novedades de la solicitud "
           "{number} ({service}) a {masked}?", "confirm": "Confirmar",
           "done": "{masked} ahora sigue la solicitud {number}. Cada mensaje tiene un enlace "
           "para dejar de recibirlos.", "track": "Ver la solicitud"},
    "pl": {"title": "Obserwuj zgłoszenie", "ask": "Wysyłać informacje o zgłoszeniu {number} "
           "({service}) na adres {masked}?", "confirm": "Potwierdź",
           "done": "{masked} obserwuje teraz zgłoszenie {number}. Każda wiadomość zawiera link "
           "do rezygnacji.", "track": "Zobacz zgłoszenie"},
    "zh": {"title": "关注请求", "ask": "将请求 {number}（{service}）的进展发送到 {masked}？",
           "confirm": "确认", "done": "{masked} 已关注请求 {number}。每封邮件都附有退订链接。",
           "track": "查看请求"},
}

#: The survey page in each language mail is written in.
SURVEY_WORDS: dict[str, dict[str, Any]] = {
    "en": {"title": "How did we do?", "question": "How satisfied are you with how request "
           "{number} ({service}) was handled?", "ratings": ("Very dissatisfied",
           "Dissatisfied", "Neither", "Satisfied", "Very satisfied"),
           "comment": "Anything you want to tell us (optional; do not include personal details)",
           "send": "Send", "thanks": "Thank you: your answer about request {number} was saved.",
           "again": "This survey was answered already. Thank you.",
           "choose": "Choose a rating from 1 to 5.", "back": "Back to the map"},
    "es": {"title": "¿Cómo lo hicimos?", "question": "¿Qué tan satisfecho está con la atención "
           "de la solicitud {number} ({service})?", "ratings": ("Muy insatisfecho",
           "Insatisfecho", "Ni uno ni otro", "Satisfecho", "Muy satisfecho"),
           "comment": "¿Algo que quiera decirnos? (opcional; no incluya datos personales)",
           "send": "Enviar", "thanks": "Gracias: guardamos su respuesta sobre la solicitud "
           "{number}.", "again": "Esta encuesta ya fue respondida. Gracias.",
           "choose": "Elija una calificación de 1 a 5.", "back": "Volver al mapa"},
    "pl": {"title": "Jak nam poszło?", "question": "Jak bardzo jesteś zadowolony(-a) z "
           "załatwienia zgłoszenia {number} ({service})?", "ratings": ("Bardzo niezadowolony",
           "Niezadowolony", "Ani tak, ani nie", "Zadowolony", "Bardzo zadowolony"),
           "comment": "Co chcesz nam przekazać? (opcjonalnie; bez danych osobowych)",
           "send": "Wyślij", "thanks": "Dziękujemy: zapisaliśmy odpowiedź dotyczącą zgłoszenia "
           "{number}.", "again": "Ta ankieta została już wypełniona. Dziękujemy.",
           "choose": "Wybierz ocenę od 1 do 5.", "back": "Powrót do mapy"},
    "zh": {"title": "我们做得如何？", "question": "您对请求 {number}（{service}）的处理满意吗？",
           "ratings": ("非常不满意", "不满意", "一般", "满意", "非常满意"),
           "comment": "您想告诉我们的（可选；请勿填写个人信息）", "send": "提交",
           "thanks": "谢谢：您对请求 {number} 的评价已保存。", "again": "此调查已填写过。谢谢。",
           "choose": "请选择 1 至 5 分。", "back": "返回地图"},
}


def _private(body: str) -> Response:
    # The link is a credential: keep it out of caches and other sites' referrer logs.
    response = make_response(body)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/unsubscribe/<token>")
def confirm(token: str) -> Response:
    """Ask before unsubscribing: mail scanners follow links, so a GET changes nothing."""
    address = _address(token)
    done = state().store.outbox.is_unsubscribed(address)
    return _private(render_template("unsubscribe.html", masked=mask_address(address),
                                    token=token, done=done))


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response:
    """Unsubscribe (the page's button, or a mail client's one-click POST)."""
    address = _address(token)
    state().store.outbox.unsubscribe(address)
    return _private(render_template("unsubscribe.html", masked=mask_address(address),
                                    token=token, done=True))


def _survey_page(token: str, *, error: str = "", status: int = 200,
                 just_answered: bool = False) -> Response:
    """The survey in the language of the mail that linked to it."""
    store = state().store
    row, answer = survey_of(store, token, current_app.secret_key or "")
    lang = language_of(row.get("language"))
    found = store.requests.get(int(row["request_id"]))
    words = SURVEY_WORDS[lang]
    values = {"number": f"#{found.id}", "service": found.service_name or found.service_code}
    response = _private(render_template(
        "survey.html", token=token, words=words, page_lang=DECLARED_TAGS.get(lang, lang),
        question=words["question"].format(**values),
        answered=just_answered or answer is not None, error=error,
        done=words["thanks"].format(**values) if just_answered else words["again"],
        comment=request.form.get("comment", "") if error else ""))
    response.status_code = status
    return response


@bp.get("/survey/<token>")
def survey(token: str) -> Response:
    """The one-question survey a closing notification links to."""
    return _survey_page(token)


@bp.post("/survey/<token>")
def answer(token: str) -> Response:
    """Store the answer; a second answer through the same link is refused (409)."""
    store, secret = state().store, current_app.secret_key or ""
    row, _ = survey_of(store, token, secret)  # a forged or unknown link stops here
    rating = request.form.get("rating", "")
    if rating not in ("1", "2", "3", "4", "5"):
        words = SURVEY_WORDS[language_of(row.get("language"))]
        return _survey_page(token, error=words["choose"], status=400)
    try:
        answer_survey(store, token, secret, rating, request.form.get("comment", ""))
    except Conflict:
        return _survey_page(token, status=409)
    except InvalidRequest as exc:  # a comment too long: the message says by how much
        return _survey_page(token, error=exc.message, status=400)
    return _survey_page(token, just_answered=True)


def _follow_page(token: str, *, done: bool) -> Response:
    store = state().store
    row = follow_request_of(store, token, current_app.secret_key or "")
    lang = language_of(row.get("language"))
    found = store.requests.get(int(row["request_id"]))
    words = FOLLOW_WORDS[lang]
    values = {"number": f"#{found.id}", "service": found.service_name or found.service_code,
              "masked": mask_address(str(row["email"]))}
    follower = store.followers.get(found.id, str(row["email"]))
    done = done or (follower is not None and follower.status == "confirmed")
    return _private(render_template(
        "follow.html", token=token, words=words, page_lang=DECLARED_TAGS.get(lang, lang),
        request_id=found.id, ask=words["ask"].format(**values),
        done=words["done"].format(**values) if done else ""))


@bp.get("/follow/<token>")
def follow_confirmation(token: str) -> Response:
    """Ask before confirming: mail scanners follow links, so a GET changes nothing."""
    return _follow_page(token, done=False)


@bp.post("/follow/<token>")
def confirm_following(token: str) -> Response:
    """Confirm the follow the link names (a second press changes nothing)."""
    confirm_follow(state().store, token, current_app.secret_key or "")
    return _follow_page(token, done=True)
