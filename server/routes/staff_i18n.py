"""Console strings: Mandarin (default) and English. Keys missing in a language fall back to the key."""

from __future__ import annotations

import re
from collections.abc import Callable

LANGS = ("zh", "en")

_STRINGS: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "app": ("生存认证 · 审核台", "Proof of life · Review console"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "login_failed": ("用户名或密码错误", "Wrong username or password"),
    "login_locked": ("登录失败次数过多，请稍后再试", "Too many failed logins; try again later"),
    "queue": ("待审队列", "Queue"),
    "enrollment_queue": ("建档异常", "Enrollment rejects"),
    "visits": ("上门核查", "Home visits"),
    "audit": ("审计日志", "Audit trail"),
    "users": ("人员账号", "Staff accounts"),
    "kind": ("类型", "Kind"),
    "reason": ("原因", "Reason"),
    "region": ("地区", "Region"),
    "assignee": ("经办人", "Assignee"),
    "status": ("状态", "Status"),
    "date_from": ("起始日期", "From"),
    "date_to": ("截止日期", "To"),
    "filter": ("筛选", "Filter"),
    "all": ("全部", "All"),
    "me": ("我的", "Mine"),
    "unassigned": ("未分配", "Unassigned"),
    "active": ("待处理", "Active"),
    "open": ("未分配", "Open"),
    "assigned": ("处理中", "Assigned"),
    "closed": ("已结案", "Closed"),
    "total": ("共", "Total"),
    "case": ("案件", "Case"),
    "created": ("创建时间", "Created"),
    "name": ("姓名", "Name"),
    "id_number": ("身份证号", "ID number"),
    "assign_to_me": ("分配给我", "Assign to me"),
    "open_case": ("打开", "Open"),
    "no_cases": ("没有符合条件的案件", "No cases match"),
    "enrolled_photos": ("登记照片（身份证照）", "Enrolled ID photo(s)"),
    "best_frames": ("本次认证最佳帧", "Best frames of this session"),
    "item_photo": ("待建档照片", "Photo from the batch"),
    "similarity": ("相似度", "Similarity"),
    "threshold": ("阈值", "Threshold"),
    "above": ("高于阈值", "above threshold"),
    "below": ("低于阈值", "below threshold"),
    "liveness": ("活体检测", "Liveness"),
    "challenge": ("动作", "Challenge"),
    "passed": ("通过", "passed"),
    "failed": ("未通过", "failed"),
    "unknown": ("未知", "unknown"),
    "quality_flags": ("质量提示", "Quality flags"),
    "quality": ("质量", "Quality"),
    "hits": ("1:N 比对命中（其他人员）", "1:N hits (other pensioners)"),
    "duplicate_of": ("疑似重复：已登记人员", "Possible duplicate of"),
    "score": ("分数", "Score"),
    "pensioner": ("人员信息", "Pensioner"),
    "address": ("地址", "Address"),
    "phone": ("电话", "Phone"),
    "birth_date": ("出生日期", "Birth date"),
    "pensioner_status": ("待遇状态", "Payment status"),
    "fraud_flag": ("疑似欺诈标记", "Fraud flag"),
    "decision": ("处理决定", "Decision"),
    "approve": ("确认生存 (a)", "Approve (a)"),
    "reject": ("驳回 (r)", "Reject (r)"),
    "home_visit": ("安排上门核查 (v)", "Request home visit (v)"),
    "fraud": ("标记疑似欺诈，提议暂停发放（需另一位经办人批准）(f)",
              "Mark suspected fraud: propose a payment suspension (another caseworker approves) (f)"),
    "note": ("备注", "Note"),
    "add_note": ("添加备注", "Add note"),
    "notes": ("备注记录", "Notes"),
    "reject_reason": ("驳回原因（必填）", "Reason for rejecting (required)"),
    "fix_photo": ("更换照片并建档", "Upload a corrected photo"),
    "confirm_duplicate": ("确认重复", "Confirm duplicate"),
    "not_duplicate": ("不是同一人，照常建档", "Not a duplicate: enroll"),
    "confirmations": ("生存认证记录", "Survival confirmations"),
    "method": ("方式", "Method"),
    "evidence_date": ("认证日期", "Evidence date"),
    "valid_until": ("有效期至", "Valid until"),
    # the labels of a record's lines on a narrow screen (table.stacked, at most 4.6 em): one short line each
    "evidence_date_short": ("认证日期", "Date"),
    "valid_until_short": ("有效期至", "Until"),
    "challenge_short": ("动作", "Action"),
    "by": ("经办", "By"),
    "decided": ("已处理。", "Decided."),
    "colon": ("：", ": "),  # between a label and its text inside a sentence
    # the keys line lists only the decisions the case offers (case.html builds it from them)
    "shortcuts": ("快捷键：", "Keys: "),
    "key_approved": ("确认", "approve"),
    "key_rejected": ("驳回", "reject"),
    "key_home_visit": ("上门", "visit"),
    "key_genuine": ("本人活体", "genuine"),
    "key_suspected_fraud": ("欺诈", "fraud"),
    "key_unfounded": ("举报不实", "unfounded"),
    "key_note": ("备注", "note"),
    "key_nav": ("下一件/上一件", "next/prev"),
    "fraud_pending": ("已提议暂停发放，待另一位经办人批准", "Payment suspension proposed: awaiting another caseworker"),
    "pad_in_band": ("复核区间内", "in the audit band"),
    "pad_below": ("低于阈值", "below the threshold"),
    "session_short": ("会话", "Session"),
    "susp_line": ("{reason}暂停发放 #{id}", "payment suspension #{id} ({reason})"),
    "susp_resumed_line": ("暂停发放 #{id} 已恢复", "resumed after payment suspension #{id}"),
    "withdrawn_by_susp": ("随暂停发放 #{id}（{reason}）撤销：{proposer} 提议，{approver} 批准",
                          "withdrawn with payment suspension #{id} ({reason}): proposed by {proposer}, "
                          "approved by {approver}"),
    "susp_case": ("来自案件", "From case"),
    "prev": ("上一件", "Previous"),
    "next": ("下一件", "Next"),
    "back_to_queue": ("返回队列", "Back to queue"),
    "no_photo": ("无照片", "no photo"),
    "error": ("错误", "Error"),
    "done": ("已完成", "Done"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "verify_chain": ("校验哈希链", "Verify hash chain"),
    "chain_ok": ("哈希链完整，共 {n} 条", "Chain intact: {n} rows"),
    "chain_bad": ("哈希链在第 {id} 条断开：{problem}", "Chain broken at row {id}: {problem}"),
    "actor": ("操作人", "Actor"),
    "role": ("角色", "Role"),
    "action": ("操作", "Action"),
    "object": ("对象", "Object"),
    "client": ("客户端地址", "Client"),
    "time": ("时间", "Time"),
    "detail": ("详情", "Detail"),
    "create_user": ("新建账号", "Create account"),
    "display_name": ("显示名", "Display name"),
    "disable": ("停用", "Disable"),
    "reset_password": ("重置密码", "Reset password"),
    "new_password": ("新密码", "New password"),
    "enabled": ("启用", "Active"),
    "disabled": ("已停用", "Disabled"),
    "task": ("任务", "Task"),
    "lang_switch": ("English", "中文"),
    "full_id_audited": ("完整身份证号的查看已记入审计日志",
                        "Viewing the full ID number is recorded in the audit trail"),
    # case page: what opened the case
    "trigger": ("立案原因", "What opened this case"),
    "pt_verification": ("人脸认证转人工", "Verification sent to review"),
    "pt_enrollment_reject": ("建档照片未通过", "Enrollment photo rejected"),
    "pt_duplicate_face": ("疑似重复建档", "Duplicate face"),
    "pt_id_collision": ("身份证号已属他人", "ID number belongs to someone else"),
    "pt_name_mismatch": ("部门数据姓名不符", "Department record: name differs"),
    "pt_alive_after_death": ("死亡后仍有生存证据", "Alive evidence after a recorded death"),
    "pt_death_after_confirmation": ("已认证生存者的死亡记录", "Death record after a survival confirmation"),
    "pt_tip_off": ("举报线索", "Tip-off"),
    "pt_spot_check": ("认证成功后的抽查", "Spot check of a confirmed session"),
    "spot_reasons": ("抽查原因", "Why it was drawn"),
    "sr_PAD_GREY_BAND": ("防伪分数刚过阈值（复核区间）", "PAD score just above the threshold (grey band)"),
    "sr_RANDOM_SAMPLE": ("随机抽样", "Random sample"),
    "sr_STILL_CHIN": ("张嘴时下巴未动（疑似挖去嘴部的照片）",
                      "Mouth opened but the chin stayed still (possibly a photo with the mouth cut out)"),
    "sr_JAW_UNREAD": ("张嘴幅度太小，无法判断下巴是否随之移动",
                      "The mouth opened too little to tell whether the chin moved with it"),
    "pad_band": ("复核区间", "Grey band"),
    "spot_confirmation": ("被抽查的认证", "Confirmation under check"),
    "spot_hint": ("认证已生效，本人未被告知抽查。请看画面是否为本人活体（注意屏幕边框、反光、翻拍）。",
                  "The confirmation stands and the pensioner was not told. Check the frames for a live person "
                  "(screen edges, glare, a filmed screen)."),
    "genuine": ("本人活体，认证有效 (g)", "The living pensioner: confirmation stands (g)"),
    "fraud_withdraws": ("标记疑似欺诈只提议暂停发放；另一位经办人批准后，同时撤销 {dates} 的认证",
                        "Suspected fraud only proposes the suspension; when another caseworker approves it, "
                        "the confirmation of {dates} is withdrawn too"),
    "fraud_proposes": ("标记疑似欺诈只提议暂停发放，需另一位经办人批准",
                       "Suspected fraud only proposes the suspension; another caseworker approves it"),
    "spot_sessions": ("本案共抽查 {n} 次认证，请逐一查看", "{n} sessions under check in this case: look at each"),
    "withdrawn": ("已撤销", "Withdrawn"),
    "pt_unreadable": ("无法读取", "Unreadable"),
    "payload_unreadable": ("案件数据无法读取，请勿据此作出决定", "The case data cannot be read; do not decide on it"),
    "session": ("认证会话", "Session"),
    "underlying_reason": ("末次重试原因", "Last retry reason"),
    "held_by_case": ("暂缓原因", "Held by"),
    "other_open_cases": ("该领取人的其他未结案件", "Other open cases of this pensioner"),
    "held_by_case_note": ("该领取人另有未结案件（疑似攻击的认证、死亡记录冲突或举报）；"
                          "本次各项检查均已通过，请一并核实",
                          "another case of this pensioner is undecided (a session refused for signs of an attack, "
                          "a death record, a tip-off); this session passed every check: decide them together"),
    "retries": ("连续重试次数", "Consecutive retries"),
    "liveness_issue": ("活体问题", "Liveness issue"),
    "li_still_image": ("画面静止（疑似照片）", "Still image (possibly a photo)"),
    "li_flat_photo": ("人脸平面（疑似照片或屏幕）", "Flat face (possibly a photo or screen)"),
    "one_person": ("各帧同一人最低相似度", "Lowest same-person similarity across frames"),
    "pad_score": ("防伪检测（真人概率 / 阈值）", "Anti-spoofing (P(real) / threshold)"),
    "no_score": ("本次认证未进行比对", "No match score (the session stopped before matching)"),
    "peak": ("峰值", "peak"),
    "run": ("建档批次", "Enrollment run"),
    "row": ("行", "row"),
    "photo_name": ("照片文件", "Photo file"),
    "manifest_name": ("建档清单中的姓名", "Name in the manifest"),
    "enrolled_name": ("已登记姓名", "Name on record"),
    "dept_record": ("部门记录（原文）", "Department record (as written)"),
    "department": ("报送部门", "Department"),
    "extract": ("数据批次", "Extract"),
    "name_there": ("部门记录中的姓名", "Name as written there"),
    "rk_death": ("死亡日期", "Date of death"),
    "rk_imprisonment": ("服刑期间", "Sentence"),
    "rk_alive_evidence": ("生存证据日期", "Alive evidence date"),
    "rk_unknown": ("日期", "Date"),
    "our_record": ("本系统记录", "Our record"),
    "death_on_record": ("已登记的死亡", "Death on record"),
    "death_date": ("死亡日期", "Date of death"),
    "confirmation_on_record": ("已有的生存认证", "Survival confirmation on record"),
    "source": ("来源", "Source"),
    "tip_description": ("举报内容", "What the reporter wrote"),
    "tip_name": ("被举报人姓名", "Name given"),
    "tip_id_number": ("被举报人身份证号", "ID number given"),
    "tip_contact": ("举报人联系方式", "Reporter's contact"),
    "approve_evidence": ("生存证据（必填，例如上门核查结果）", "Evidence of life (required, e.g. home visit result)"),
    "unfounded": ("举报不实，结案 (u)", "Unfounded: close (u)"),
    "unfounded_reason": ("核查结论（必填）", "Finding (required)"),
    "dec_unfounded": ("举报不实", "Unfounded"),
    "ch_blink": ("眨眼", "blink"),
    "ch_turn_left": ("向左转头", "turn left"),
    "ch_turn_right": ("向右转头", "turn right"),
    "ch_open_mouth": ("张嘴", "open mouth"),
    "ch_nod": ("点头", "nod"),
    # review kinds
    "kind_verification": ("人脸认证", "Verification"),
    "kind_enrollment": ("建档", "Enrollment"),
    "kind_data_conflict": ("数据比对冲突", "Data conflict"),
    "kind_name_mismatch": ("姓名不符", "Name mismatch"),
    "kind_tip_off": ("举报线索", "Tip-off"),
    "kind_spot_check": ("认证抽查", "Spot check"),
    # decisions
    "dec_approved": ("已确认生存", "Approved"),
    "dec_rejected": ("已驳回", "Rejected"),
    "dec_home_visit": ("已安排上门", "Home visit requested"),
    "dec_suspected_fraud": ("疑似欺诈", "Suspected fraud"),
    "dec_photo_fixed": ("照片已更换", "Photo fixed"),
    "dec_duplicate_confirmed": ("确认重复", "Duplicate confirmed"),
    "dec_not_duplicate": ("非重复，已建档", "Not a duplicate"),
    "dec_genuine": ("本人活体，认证有效", "Genuine: the confirmation stands"),
    # pensioner status
    "st_active": ("正常发放", "Active"),
    "st_suspended": ("暂停发放（待审查）", "Suspended (review)"),
    "st_deceased": ("已死亡", "Deceased"),
    # methods
    "m_caseworker_review": ("人工审核", "Caseworker review"),
    "m_face_self_service": ("人脸自助认证", "Face self-service"),
    "m_data_comparison": ("数据比对", "Data comparison"),
    "m_assisted": ("协助认证", "Assisted"),
    "m_home_visit": ("上门核查", "Home visit"),
    # error codes shown in the console
    "err_CONFLICT": ("操作冲突（案件已结案或已分配给他人）", "Conflict (case closed or assigned to someone else)"),
    "err_BAD_REQUEST": ("请求不完整（例如缺少原因）", "Incomplete request (e.g. a reason is missing)"),
    "err_NO_FACE": ("照片中未检测到人脸", "No face in the photo"),
    "err_MULTIPLE_FACES": ("照片中有多张人脸", "More than one face in the photo"),
    "tip_reference": ("举报编号（举报人看到的）", "Reference (as shown to the reporter)"),
    "err_unknown": ("操作未完成", "The action did not complete"),
    # staff account errors (users page)
    "users_err_BAD_REQUEST": ("用户名（1–64 个字符、无空格）、角色或密码（至少 10 个字符）不符合要求",
                              "Username (1-64 characters, no spaces), role or password (10+ characters) not accepted"),
    "users_err_CONFLICT": ("用户名已存在，或不能停用最后一个管理员",
                           "Username taken, or the last administrator cannot be disabled"),
    "users_err_NOT_FOUND": ("没有该用户", "No such user"),
    # template refresh on the case page (lifecert/services/review/refresh_templates.py)
    "refresh_templates": ("更新模板（认证自拍）", "Refresh templates (verified selfies)"),
    "use_as_template": ("将本次认证的最佳帧用作模板", "Use this session's best frame as a template"),
    "use_as_template_hint": ("仅在确认画面中是本人后使用；每次操作均记录审计。",
                             "Only when you are sure the frames show the pensioner; audited."),
    "refresh_refused": ("上次“用作模板”被拒绝", "Last \"use as template\" was refused"),
    "revoke": ("撤销", "Revoke"),
    "revoke_reason": ("撤销原因（必填）", "Reason for revoking (required)"),
    "no_refresh_templates": ("暂无更新模板", "No refresh templates"),
    "model": ("模型", "Model"),
    "expires": ("到期", "Expires"),
    "approved_by": ("批准人", "Approved by"),
    "rt_active": ("有效", "active"),
    "rt_revoked": ("已撤销", "revoked"),
    "rt_retired": ("已停用", "retired"),
    # payment suspensions (agency, issue 15)
    "suspensions": ("暂停发放审批", "Payment suspensions"),
    "susp_pending": ("待签批", "Awaiting signatures"),
    "susp_approved": ("已暂停", "Suspended"),
    "susp_closed": ("已恢复/已撤销", "Resumed / cancelled"),
    "susp_export": ("导出给发放系统", "Export for the payment system"),
    "susp_grace_until": ("宽限期至", "Grace until"),
    "susp_signatures": ("提议人 / 批准人", "Proposed by / approved by"),
    "susp_months_owed": ("补发月数", "Months owed"),
    "susp_propose": ("提议暂停（第一签）", "Propose (first signature)"),
    "susp_approve": ("批准暂停（第二签）", "Approve (second signature)"),
    "susp_decline": ("不予暂停", "Decline"),
    "susp_needs_second": ("需另一位经办人批准", "Needs another caseworker's approval"),
    "susp_added_by": ("附加认证：", "Confirmation added by: "),
    "susp_withdraws_pending": ("批准时同时撤销 {dates} 的认证", "Approving also withdraws the confirmation of {dates}"),
    "susp_withdraws_done": ("已撤销 {dates} 的认证", "The confirmation of {dates} was withdrawn"),
    "susp_withdraws_kept": ("未批准，{dates} 的认证仍有效", "Declined: the confirmation of {dates} stands"),
    "susp_reason_overdue": ("逾期未认证", "Overdue"),
    "susp_reason_fraud": ("疑似欺诈", "Suspected fraud"),
    "susp_st_open": ("待提议", "Open"),
    "susp_st_proposed": ("待批准", "Proposed"),
    "susp_st_approved": ("已暂停发放", "Suspended"),
    "susp_st_resumed": ("已恢复发放", "Resumed"),
    "susp_st_cancelled": ("已撤销", "Cancelled"),
    "susp_st_lift_proposed": ("已提议恢复发放", "Lift proposed"),
    "susp_propose_lift": ("提议恢复发放（第一签）", "Propose to lift (first signature)"),
    "susp_approve_lift": ("批准恢复发放（第二签）", "Approve the lift (second signature)"),
    "err_TWO_PERSON_RULE": ("提议人不能自己批准，附加了认证的经办人也不能，需另一位经办人",
                            "The proposer cannot approve, nor can a caseworker who added a confirmation: "
                            "another caseworker must"),
    "err_FRAUD_SUSPENSION_IN_FORCE": ("已因疑似冒领暂停发放，不能再附加认证。如需核实本人，请选“上门核实”",
                                      "Payment is already suspended for suspected fraud; no confirmation can be "
                                      "added. To check the pensioner, choose home visit"),
    "fraud_joins": ("已有待批准的疑似冒领暂停（#{id}）：标记疑似欺诈会把 {dates} 的认证附到该案，"
                    "另一位经办人批准时一并撤销",
                    "A fraud suspension (#{id}) is already pending: suspected fraud adds the confirmation of {dates} "
                    "to it, withdrawn when another caseworker approves"),
    "fraud_joins_none": ("已有待批准的疑似冒领暂停（#{id}）：标记疑似欺诈会并入该案",
                         "A fraud suspension (#{id}) is already pending: suspected fraud joins it"),
    "fraud_in_force": ("已因疑似冒领暂停发放（#{id}）：不能再标记疑似欺诈。如需核实本人，请选“上门核实”",
                       "Payment is already suspended for suspected fraud (#{id}): suspected fraud cannot be marked "
                       "again. To check the pensioner, choose home visit"),
    # agency dashboards (services/dashboard.py)
    "dashboard": ("认证进度", "Certification dashboard"),
    "dash_cycle": ("{year} 年度认证周期（截至 {as_of}）", "Certification cycle {year} (as of {as_of})"),
    "dash_scope_all": ("全部地区", "All regions"),
    "dash_year": ("年度", "Year"),
    "dash_region_prefix": ("地区代码（前缀）", "Region code (prefix)"),
    "dash_register": ("在册人数", "On register"),
    "dash_due": ("本期应认证", "Due this cycle"),
    "dash_certified": ("已认证", "Certified"),
    "dash_overdue": ("逾期未认证", "Overdue"),
    "dash_suspended": ("本期暂停发放", "Suspended this cycle"),
    "dash_resumed": ("本期恢复发放", "Resumed this cycle"),
    "dash_total": ("合计", "Total"),
    "dash_export": ("导出 CSV", "Export CSV"),
    "dash_departments": ("部门数据提供与使用年度评价", "Department data provision and use, yearly evaluation"),
    "dash_department": ("部门", "Department"),
    "dash_expected": ("应报批次", "Extracts expected"),
    "dash_delivered": ("已报批次", "Extracts delivered"),
    "dash_on_time": ("按时", "On time"),
    "dash_late": ("逾期", "Late"),
    "dash_missing": ("缺报", "Missing"),
    "dash_rows": ("数据行", "Rows"),
    "dash_rejected": ("退回行", "Rejected rows"),
    "dash_matched": ("比对命中", "Matched"),
    "dash_scope_note": ("提供情况为部门全量统计；比对使用情况限于您的辖区。",
                        "Provision counts are department-wide; use (matches, outcomes) is limited to your region."),
    "ch_face_self_service": ("本人刷脸", "Self-service face"),
    "ch_assisted": ("协助认证", "Assisted"),
    "ch_home_visit": ("上门认证", "Home visit"),
    "ch_data_comparison": ("数据比对", "Data comparison"),
    "ch_caseworker_review": ("人工审核", "Caseworker review"),
    "out_deceased": ("死亡（已处理）", "Deceased"),
    "out_already_deceased": ("已知死亡", "Already deceased"),
    "out_imprisoned": ("服刑", "Imprisoned"),
    "out_released": ("释放", "Released"),
    "out_alive_evidence": ("生存佐证", "Alive evidence"),
    "out_conflict": ("冲突待审", "Conflict (review)"),
    "out_name_mismatch": ("姓名不符", "Name mismatch"),
    "out_unmatched": ("未匹配", "Unmatched"),
}

# community workers, home-visit closing, department extract uploads (issue 15, exchange)
_STRINGS.update({
    "my_visits": ("我的上门任务", "My home visits"),
    "close_visit": ("现场拍照并结案", "Close with on-site photo"),
    "onsite_photo": ("现场照片（本人正面）", "On-site photo (the pensioner, facing the camera)"),
    "visit_note": ("核查情况（必填）", "What you saw (required)"),
    "visit_result": ("上次结果", "Last result"),
    "assign_to": ("指派给社区工作人员（用户名）", "Assign to community worker (username)"),
    "assign": ("指派", "Assign"),
    "assisted_mode": ("帮助他人认证", "Help someone certify"),
    "assisted_today": ("今日已协助 {used} / {limit} 次", "Assisted today: {used} of {limit}"),
    "assisted_report": ("协助认证统计（按工作人员，CSV）", "Assisted certifications per worker (CSV)"),
    "imports": ("部门数据导入", "Department extracts"),
    "upload_extract": ("上传部门数据文件", "Upload a department extract"),
    "department": ("部门", "Department"),
    "period": ("所属月份 (YYYY-MM)", "Month covered (YYYY-MM)"),
    "extract_file": ("数据文件（CSV 或 XLSX）", "Extract file (CSV or XLSX)"),
    "upload": ("上传并导入", "Upload and import"),
    "received": ("接收时间", "Received"),
    "rows": ("行数", "Rows"),
    "valid": ("有效", "Valid"),
    "rejected": ("拒绝", "Rejected"),
    "matches": ("匹配", "Matched"),
    "actor": ("提交者", "Submitted by"),
    "visit_CONFIRMED": ("已确认生存，任务完成", "Survival confirmed, task done"),
    "visit_NO_FACE": ("照片中未检测到人脸，请重拍", "No face in the photo: take it again"),
    "visit_LOW_MATCH": ("照片与档案不符，已转人工审核", "The photo does not match: sent to review"),
    "import_done": ("导入完成", "Import finished"),
    "import_detail": ("导入回执", "Import receipt"),
    "rejects_by_reason": ("拒绝原因统计", "Rejected rows by reason"),
    "rejected_rows": ("被拒绝的行（行号与原因）", "Rejected rows (row number and reason)"),
    "outcomes": ("处理结果", "Outcomes"),
    "reason": ("原因", "Reason"),
    "row": ("行号", "Row"),
    "import_repeat": ("该文件已导入过，未作改动", "This file was imported before; nothing changed"),
    "err_BAD_EXTRACT": ("数据文件无法读取", "The extract cannot be read"),
    "err_BAD_MAPPING": ("文件列与该部门的映射不符", "The file's columns do not match the department's mapping"),
})


# Why a case was opened (review_case.reason) and a home visit's last result, in the caseworker's words; the code
# itself stays on the page for support (a title attribute, or small text on the case page). Unknown codes are
# shown as they are.
_STRINGS.update({f"rc_{code}": pair for code, pair in {
    # verification sent to review (lifecert.services.verification.rules) and retries escalated
    "LOW_MATCH": ("人脸比对分数偏低", "Face match below the threshold"),
    "LIVENESS_FAILED": ("活体检测未通过", "Liveness check failed"),
    "PRESENTATION_ATTACK": ("疑似翻拍、打印或面具", "Suspected replay, print or mask"),
    "DIFFERENT_PERSONS": ("认证中出现不同的人", "Different people during the session"),
    "MATCHES_OTHER_PENSIONER": ("与其他领取人的人脸相似", "Face matches another pensioner"),
    "TOO_MANY_RETRIES": ("多次重试未成功", "Too many retries"),
    "HELD_FOR_REVIEW": ("本次通过，但该领取人另有待决案件", "Passed, held: another case of this pensioner is open"),
    "CHALLENGE_NOT_SEEN": ("未完成指定动作", "Challenge not performed"),
    "TOO_FEW_FRAMES": ("有效画面太少", "Too few usable frames"),
    "FACE_NOT_CENTRED": ("人脸不在画面中央", "Face not centred"),
    # photo quality (enrollment, home visits)
    "NO_FACE": ("未检测到人脸", "No face found"),
    "MULTIPLE_FACES": ("画面中有多张人脸", "More than one face"),
    "FACE_TOO_SMALL": ("人脸太小", "Face too small"),
    "BLURRY": ("照片模糊", "Blurry"),
    "TOO_DARK": ("光线太暗", "Too dark"),
    "TOO_BRIGHT": ("光线太亮", "Too bright"),
    "LOW_CONTRAST": ("对比度太低", "Low contrast"),
    "POSE_TOO_LARGE": ("头部偏转过大", "Head turned too far"),
    "EYES_CLOSED": ("闭眼", "Eyes closed"),
    "LOW_QUALITY": ("照片质量不足", "Photo quality too low"),
    "UNREADABLE_IMAGE": ("图片无法读取", "Image cannot be read"),
    "UNSUPPORTED_FORMAT": ("图片格式不支持", "Image format not supported"),
    "IMAGE_TOO_LARGE": ("图片太大", "Image too large"),
    "FILE_MISSING": ("照片文件缺失", "Photo file missing"),
    # enrollment rows
    "BAD_ID_NUMBER": ("身份证号无效", "Invalid ID number"),
    "DUPLICATE_ROW": ("清单中身份证号重复", "ID number repeated in the manifest"),
    "DUPLICATE_FACE": ("疑似重复建档", "Duplicate face"),
    "ID_COLLISION": ("身份证号已属他人", "ID number belongs to someone else"),
    # department data, tip-offs, spot checks, home visits
    "NAME_MISMATCH": ("部门数据姓名不符", "Department record: name differs"),
    "ALIVE_AFTER_DEATH": ("死亡后仍有生存证据", "Alive evidence after a recorded death"),
    "DEATH_AFTER_CONFIRMATION": ("已认证生存者的死亡记录", "Death record after a survival confirmation"),
    "TIP_OFF": ("举报线索", "Tip-off"),
    "PAD_GREY_BAND": ("防伪分数刚过阈值", "PAD score just above the threshold"),
    "RANDOM_SAMPLE": ("随机抽样", "Random sample"),
    "STILL_CHIN": ("张嘴时下巴未动", "Mouth opened, chin still"),
    "JAW_UNREAD": ("张嘴动作无法判读下巴", "Mouth opening too small to check the chin"),
    "PENSIONER_DECEASED": ("领取人已登记死亡", "Pensioner recorded as deceased"),
    "CONFIRMED": ("已确认生存", "Survival confirmed"),
}.items()})


def reason_label(t: Callable[..., str], code: str | None) -> str:
    """A reason code (``review_case.reason``, a visit's result) in the caseworker's language; unknown codes as
    they are (never an empty cell)."""
    if not code:
        return ""
    key = f"rc_{code}"
    return t(key) if known(key) else code


# The departments whose mappings the package ships (lifecert/data/mappings), as a caseworker names them. A
# department an agency adds later (a new mapping file) is shown by its code until it is named here.
_DEPARTMENTS: dict[str, tuple[str, str]] = {
    "police_deregistration": ("公安局", "Police"),
    "civil_affairs_cremation": ("民政局", "Civil Affairs"),
    "court_sentence": ("法院", "Court"),
    "prison_release": ("监狱管理局", "Prison Administration"),
    "medical_settlement": ("医保局", "Medical Insurance"),
    "bus_card_check": ("公交公司", "Bus Company"),
}


def department_label(lang: str, code: str | None) -> str:
    """A department's code (``police_deregistration``) in the caseworker's words; an unknown one as it is."""
    if not code:
        return ""
    pair = _DEPARTMENTS.get(code)
    return pair[1 if lang == "en" else 0] if pair else code


# pensioner.status_reason as the services write it (English, for the record): the forms they produce, read back
# into the caseworker's language; the group named in the third place is a department's code. Anything else is
# shown as written.
_D = r"(\d{4}-\d{2}-\d{2})"
_STATUS_REASONS: tuple[tuple[re.Pattern[str], str, int | None], ...] = (
    (re.compile(rf"death {_D} reported by (.+)"), "psr_death", 1),  # datamatch/outcomes.py
    (re.compile(rf"imprisoned from {_D} until {_D} \((.+)\)"), "psr_imprisoned_until", 2),
    (re.compile(rf"imprisoned from {_D} \((.+)\)"), "psr_imprisoned", 1),
    (re.compile(rf"released {_D} \((.+)\)"), "psr_released", 1),
    (re.compile(rf"resumed {_D} \(released\)"), "psr_resumed_released", None),  # datamatch/reports.py
    (re.compile(rf"resumed {_D} after payment suspension #(\d+)(?: \(lifted\))?"), "psr_resumed_after", None),
)
_STRINGS.update({
    "psr_death": ("{0} 死亡（{1}报送）", "Died {0} (reported by {1})"),
    "psr_imprisoned_until": ("服刑：{0} 至 {1}（{2}报送）", "In prison {0} to {1} (reported by {2})"),
    "psr_imprisoned": ("服刑：自 {0} 起（{1}报送）", "In prison from {0} (reported by {1})"),
    "psr_released": ("{0} 释放（{1}报送）", "Released {0} (reported by {1})"),
    "psr_resumed_released": ("{0} 释放后恢复发放", "Payment resumed {0} after release"),
    "psr_resumed_after": ("{0} 恢复发放（暂停案 #{1}）", "Payment resumed {0} (suspension #{1})"),
})


def status_reason_label(lang: str, text: str | None) -> str:
    """A stored ``pensioner.status_reason`` in ``lang`` when it is one of the forms the services write (the
    department named as the caseworker would), else as written (a reason typed by a person, or a form this
    table does not know yet)."""
    if not text:
        return ""
    for pattern, key, dept in _STATUS_REASONS:
        m = pattern.fullmatch(text)
        if m:
            groups = list(m.groups())
            if dept is not None:
                groups[dept] = department_label(lang, groups[dept])
            return _STRINGS[key][1 if lang == "en" else 0].format(*groups)
    return text


def known(key: str) -> bool:
    """Whether ``key`` has a text. Console banners show only known texts: a query parameter such as
    ``?error=...`` must never put attacker-chosen words on a trusted page."""
    return key in _STRINGS


def translator(lang: str) -> Callable[..., str]:
    i = 1 if lang == "en" else 0

    def t(key: str, **kw: object) -> str:
        pair = _STRINGS.get(key)
        s = pair[i] if pair else key
        return s.format(**kw) if kw else s

    return t
