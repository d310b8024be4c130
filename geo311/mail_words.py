"""What mail to residents says, in each language the city writes to them.

Data only: subjects and opening lines per kind of message, the labels of the links,
and how language tags map to these phrases.
"""

from __future__ import annotations

from typing import Any

#: What each message says, per language: subjects and opening lines per kind.
PHRASES: dict[str, dict[str, Any]] = {
    "en": {
        "subject": {
            "received": "Request {number} received: {service}",
            "status": "Request {number} updated: {status}",
            "closed": "Request {number} closed: {service}",
            "merged": "Request {number} joined request {into}",
            "follow": "Confirm: follow request {number} ({service})",
        },
        "lead": {
            "received": "Thank you: we received your report of {service}. "
                        "Its tracking number is {number}.",
            "status": "Request {number} ({service}) has a new status: {status}.",
            "closed": "Request {number} ({service}) is now closed.",
            "merged": "Request {number} ({service}) reports the same problem as request "
                      "{into}; they are handled together.",
            "follow": "Someone asked to send this address the updates of request {number} "
                      "({service}). If it was you, confirm with the link below; if not, "
                      "ignore this message and nothing more will be sent.",
        },
        "joined": "It reports the same problem as request {into} and is handled with it.",
        "note": "Note from the city:",
        "track": "Follow the request here:",
        "unsubscribe": "To receive no more of these messages:",
        "survey": "How did we do? Rate how this request was handled, from 1 to 5:",
        "confirm": "Confirm that you want to follow this request:",
        "statuses": {"open": "open", "closed": "closed"},
    },
    "es": {
        "subject": {
            "received": "Solicitud {number} recibida: {service}",
            "status": "Solicitud {number} actualizada: {status}",
            "closed": "Solicitud {number} cerrada: {service}",
            "merged": "La solicitud {number} se unió a la solicitud {into}",
            "follow": "Confirme: seguir la solicitud {number} ({service})",
        },
        "lead": {
            "received": "Gracias: recibimos su reporte de {service}. "
                        "Su número de seguimiento es {number}.",
            "status": "La solicitud {number} ({service}) tiene un nuevo estado: {status}.",
            "closed": "La solicitud {number} ({service}) está cerrada.",
            "merged": "La solicitud {number} ({service}) reporta el mismo problema que la "
                      "solicitud {into}; se atenderán juntas.",
            "follow": "Alguien pidió enviar a esta dirección las novedades de la solicitud "
                      "{number} ({service}). Si fue usted, confirme con el enlace de abajo; si "
                      "no, ignore este mensaje y no se enviará nada más.",
        },
        "joined": "Reporta el mismo problema que la solicitud {into} y se atenderá con ella.",
        "note": "Nota de la ciudad:",
        "track": "Siga la solicitud aquí:",
        "unsubscribe": "Para no recibir más mensajes como este:",
        "survey": "¿Cómo lo hicimos? Califique cómo se atendió esta solicitud, de 1 a 5:",
        "confirm": "Confirme que desea seguir esta solicitud:",
        "statuses": {"open": "abierta", "closed": "cerrada"},
    },
    "pl": {
        "subject": {
            "received": "Zgłoszenie {number} przyjęte: {service}",
            "status": "Zgłoszenie {number} zaktualizowane: {status}",
            "closed": "Zgłoszenie {number} zamknięte: {service}",
            "merged": "Zgłoszenie {number} dołączono do zgłoszenia {into}",
            "follow": "Potwierdź: obserwowanie zgłoszenia {number} ({service})",
        },
        "lead": {
            "received": "Dziękujemy: przyjęliśmy zgłoszenie ({service}). "
                        "Numer do śledzenia: {number}.",
            "status": "Zgłoszenie {number} ({service}) ma nowy status: {status}.",
            "closed": "Zgłoszenie {number} ({service}) zostało zamknięte.",
            "merged": "Zgłoszenie {number} ({service}) dotyczy tego samego problemu co "
                      "zgłoszenie {into}; zostaną załatwione razem.",
            "follow": "Ktoś poprosił o wysyłanie na ten adres informacji o zgłoszeniu "
                      "{number} ({service}). Jeśli to Ty, potwierdź poniższym linkiem; jeśli "
                      "nie, zignoruj tę wiadomość i nic więcej nie wyślemy.",
        },
        "joined": "Dotyczy tego samego problemu co zgłoszenie {into} i zostanie załatwione "
                  "razem z nim.",
        "note": "Uwaga od miasta:",
        "track": "Śledź zgłoszenie tutaj:",
        "unsubscribe": "Aby nie otrzymywać więcej takich wiadomości:",
        "survey": "Jak nam poszło? Oceń załatwienie tego zgłoszenia w skali od 1 do 5:",
        "confirm": "Potwierdź, że chcesz obserwować to zgłoszenie:",
        "statuses": {"open": "otwarte", "closed": "zamknięte"},
    },
    "zh": {
        "subject": {
            "received": "已收到请求 {number}：{service}",
            "status": "请求 {number} 已更新：{status}",
            "closed": "请求 {number} 已关闭：{service}",
            "merged": "请求 {number} 已并入请求 {into}",
            "follow": "请确认：关注请求 {number}（{service}）",
        },
        "lead": {
            "received": "感谢您的报告：我们已收到关于“{service}”的请求，追踪编号为 {number}。",
            "status": "请求 {number}（{service}）的状态已更新为：{status}。",
            "closed": "请求 {number}（{service}）已关闭。",
            "merged": "请求 {number}（{service}）与请求 {into} 报告的是同一问题，将一并处理。",
            "follow": "有人请求将请求 {number}（{service}）的进展发送到此邮箱。如果是您本人，"
                      "请点击下方链接确认；如果不是，请忽略此邮件，我们不会再发送任何内容。",
        },
        "joined": "它与请求 {into} 报告的是同一问题，将一并处理。",
        "note": "市政部门的说明：",
        "track": "查看进度：",
        "unsubscribe": "不再接收此类邮件：",
        "survey": "我们做得如何？请为此请求的处理打分（1 至 5 分）：",
        "confirm": "确认您要关注此请求：",
        "statuses": {"open": "处理中", "closed": "已关闭"},
    },
}
#: The tag a message declares (Content-Language, ``<html lang>``) per phrase language.
DECLARED_TAGS = {"zh": "zh-Hans"}
#: Language tags as requests may carry them, mapped to the phrases above.
LANGUAGE_TAGS = {"zh-hans": "zh", "zh-cn": "zh", "zh-sg": "zh", "es-us": "es",
                 "es-mx": "es", "pl-pl": "pl", "en-us": "en"}
