"""What the pensioner reads: one Mandarin and one English text per reason code.

Neutral wording on purpose: a presentation attack, a low match or a liveness failure all
read as "a caseworker will check" — the page never says "attack" or names the test.
"""

from __future__ import annotations

from lifecert.domain.errors import ErrorCode

NOT_FOUND_MESSAGE = "no enrolled pensioner matches this ID number and name"
WAITING = ("等待上传", "waiting for the upload")

# reason code -> (Mandarin, English): what the pensioner reads on the result screen.
MESSAGES: dict[str, tuple[str, str]] = {
    "CONFIRMED": ("认证成功，谢谢您！本次生存认证已记录。", "Done, thank you! Your proof of life has been recorded."),
    ErrorCode.NO_FACE: (
        "没有看清您的脸。请正对手机，让脸在框内，再试一次。",
        "We could not see your face. Face the phone, keep your face in the frame, and try again.",
    ),
    ErrorCode.MULTIPLE_FACES: (
        "画面里有多个人。请只让本人出现在镜头前，再试一次。",
        "Several faces were seen. Only you should be in front of the camera. Please try again.",
    ),
    ErrorCode.TOO_DARK: (
        "光线太暗。请到亮一点的地方，再试一次。",
        "It is too dark. Please move somewhere brighter and try again.",
    ),
    ErrorCode.TOO_BRIGHT: (
        "光线太强或逆光。请避开强光，再试一次。",
        "Too much light or backlight. Please avoid strong light and try again.",
    ),
    ErrorCode.FACE_NOT_CENTRED: (
        "脸没有在框的中间。请把脸放在框内，再试一次。",
        "Your face was not in the middle. Keep it inside the frame and try again.",
    ),
    ErrorCode.FACE_TOO_SMALL: (
        "离手机太远了。请靠近一点，再试一次。",
        "You are too far away. Please come closer and try again.",
    ),
    ErrorCode.BLURRY: (
        "画面不清楚。请拿稳手机，再试一次。",
        "The picture is blurry. Hold the phone still and try again.",
    ),
    ErrorCode.TOO_FEW_FRAMES: (
        "拍到的画面太少。请保持脸在框内，直到完成，再试一次。",
        "Too few usable pictures. Keep your face in the frame until the end and try again.",
    ),
    ErrorCode.CHALLENGE_NOT_SEEN: (
        "没有看到您按提示做动作。请听提示，按顺序做动作，再试一次。",
        "We did not see the requested actions. Follow the prompts in order and try again.",
    ),
    ErrorCode.LIVENESS_FAILED: (
        "无法确认是本人现场认证，已转给工作人员核实，工作人员会联系您。",
        "We could not confirm a live person. A caseworker will check and contact you.",
    ),
    # Deliberately the same text as LIVENESS_FAILED: the pensioner never reads "attack".
    ErrorCode.PRESENTATION_ATTACK: (
        "无法确认是本人现场认证，已转给工作人员核实，工作人员会联系您。",
        "We could not confirm a live person. A caseworker will check and contact you.",
    ),
    ErrorCode.DIFFERENT_PERSONS: (
        "认证过程中出现了不同的人，已转给工作人员核实，工作人员会联系您。",
        "More than one person appeared. A caseworker will check and contact you.",
    ),
    ErrorCode.LOW_MATCH: (
        "无法确认是本人，已转给工作人员核实，工作人员会联系您。",
        "We could not confirm it is you. A caseworker will check and contact you.",
    ),
    ErrorCode.MATCHES_OTHER_PENSIONER: (
        "需要人工核实，工作人员会联系您。",
        "This needs a manual check. A caseworker will contact you.",
    ),
    # The pensioner passed this time, but an earlier session waits for a caseworker (rules.hold): the same
    # neutral review text, no word of the earlier session's reason.
    ErrorCode.HELD_FOR_REVIEW: (
        "本次认证已提交，需要工作人员核实，工作人员会联系您。",
        "Your certification has been submitted. A caseworker needs to check it and will contact you.",
    ),
    ErrorCode.TOO_MANY_RETRIES: (
        "多次未能完成认证，已转给工作人员，工作人员会联系您；也可以到社保服务中心办理。",
        "Several tries did not succeed. A caseworker will contact you, or visit the service centre.",
    ),
}


def message_for(reason: str | None) -> tuple[str, str]:
    """(Mandarin, English) for a decided session's reason code (None: confirmed)."""
    return MESSAGES.get(reason or "CONFIRMED", MESSAGES["CONFIRMED"])
