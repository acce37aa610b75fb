"""Fixed vocabularies of the after-sales demo (AFTERSALES.md §0, §5): places, names, models,
mixes and zh-CN phrase banks. Weights are percentages as the spec gives them."""

from __future__ import annotations

# region → (province, city, lng, lat); the provinces are those of the forms' region formula
PLACES: dict[str, list[tuple[str, str, float, float]]] = {
    "north": [
        ("北京市", "北京市", 116.40, 39.90),
        ("天津市", "天津市", 117.20, 39.12),
        ("河北省", "石家庄市", 114.51, 38.04),
    ],
    "northeast": [
        ("辽宁省", "沈阳市", 123.43, 41.80),
        ("吉林省", "长春市", 125.32, 43.82),
        ("黑龙江省", "哈尔滨市", 126.53, 45.80),
    ],
    "east": [
        ("上海市", "上海市", 121.47, 31.23),
        ("江苏省", "南京市", 118.80, 32.06),
        ("浙江省", "杭州市", 120.16, 30.27),
        ("山东省", "济南市", 117.00, 36.65),
    ],
    "central": [
        ("河南省", "郑州市", 113.62, 34.75),
        ("湖北省", "武汉市", 114.31, 30.59),
        ("湖南省", "长沙市", 112.94, 28.23),
    ],
    "south": [
        ("广东省", "广州市", 113.26, 23.13),
        ("广东省", "深圳市", 114.06, 22.54),
        ("广西壮族自治区", "南宁市", 108.37, 22.82),
    ],
    "southwest": [
        ("四川省", "成都市", 104.07, 30.57),
        ("重庆市", "重庆市", 106.55, 29.56),
        ("云南省", "昆明市", 102.83, 24.88),
    ],
    "northwest": [
        ("陕西省", "西安市", 108.94, 34.34),
        ("甘肃省", "兰州市", 103.83, 36.06),
        ("新疆维吾尔自治区", "乌鲁木齐市", 87.62, 43.83),
    ],
}
REGIONS = {
    "east": 30,
    "south": 20,
    "north": 15,
    "central": 12,
    "southwest": 10,
    "northeast": 7,
    "northwest": 6,
}
DISTRICTS = ["高新区", "经开区", "城东区", "城西区", "新区", "工业园区"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "磊",
    "强",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "秀英",
    "华",
    "丽",
    "建国",
    "海燕",
    "志强",
    "晓东",
    "文博",
    "雪梅",
    "子涵",
    "浩然",
]
COMPANY_WORDS = [
    "精工",
    "食品",
    "医疗",
    "酒店",
    "制药",
    "纺织",
    "电子",
    "物流",
    "餐饮",
    "化工",
    "机械",
    "饮料",
    "印刷",
    "学校",
    "商贸",
    "汽配",
]
INDUSTRIES = {
    "manufacturing": 40,
    "food_beverage": 15,
    "healthcare": 10,
    "hospitality": 10,
    "retail": 10,
    "education": 5,
    "public_sector": 5,
    "other": 5,
}

# code, line, skill, warranty months, pm interval months, typical faults
MODELS = [
    ("AC-300", "空压机 AC-300", "compressor", "compressor", 12, 6, ["E07", "E12", "G00", "G90"]),
    ("AC-500", "空压机 AC-500", "compressor", "compressor", 12, 6, ["E07", "E12", "G00", "G90"]),
    ("WP-200", "商用净水机 WP-200", "purifier", "purifier", 12, 3, ["W03", "W09", "G00", "G90"]),
    ("WP-800", "商用净水机 WP-800", "purifier", "purifier", 12, 3, ["W03", "W09", "G00", "G90"]),
    ("IC-10", "智能控制器 IC-10", "controller", "controller_fw", 24, 12, ["F01", "F05", "G00"]),
]
MODEL_SHARE = {"AC-300": 28, "AC-500": 17, "WP-200": 25, "WP-800": 15, "IC-10": 15}

CHANNELS = {
    "phone": 35,
    "wechat": 25,
    "web": 12,
    "qr": 10,
    "app": 8,
    "email": 3,
}  # system: pm, recall
TYPES = {
    "repair": 45,
    "tech_support": 18,
    "consultation": 12,
    "pm": 7,
    "installation": 6,
    "return_exchange": 4,
    "complaint": 3,
    "feedback": 3,
    "recall": 2,
}
WEEKDAY = [1.2, 1.0, 1.0, 1.0, 0.9, 0.35, 0.25]  # Monday first
DEVICE_TYPES = ("repair", "installation", "pm", "return_exchange", "recall")
BASE_PRIORITY = {
    "repair": "medium",
    "tech_support": "medium",
    "return_exchange": "medium",
    "recall": "medium",
    "complaint": "high",
}  # others: low
PRIORITY_UP = {"low": "medium", "medium": "high", "high": "urgent", "urgent": "urgent"}
URGENT_WORDS = ["停机", "无法启动", "漏电", "冒烟", "起火", "爆炸", "安全"]
NEGATIVE_WORDS = ["太差", "垃圾", "投诉", "骗", "退货", "12315", "曝光", "愤怒", "失望", "再也不"]
POSITIVE_WORDS = ["谢谢", "满意", "很好", "及时", "专业"]

FAULT_TEXT = {
    "E07": ["压力阀泄漏，气压上不去", "设备E07报警，气压一直上不去", "压力阀处漏气，有嘶嘶声"],
    "E12": ["电机过热报警E12", "运行半小时后电机过热停转", "电机温度高，外壳烫手"],
    "W03": ["滤芯堵塞，出水很慢", "W03报警，出水量明显变小", "滤芯提示更换，水流变小"],
    "W09": ["机器底部漏水", "W09报警，地面有积水", "接头处渗水"],
    "F01": ["控制器固件崩溃，反复重启", "屏幕死机，按键无反应", "升级固件后无法启动界面"],
    "F05": ["控制器与设备通信中断", "F05报警，远程监控离线", "网关连接不上，数据不刷新"],
    "G00": ["请问如何设置定时开关机", "想了解保养周期和操作方法", "参数怎么调整比较合适"],
    "G90": ["误操作后设备锁定", "按错了按钮，设备进入保护模式", "员工误关了总阀"],
    "S01": ["工程师服务态度不好", "客服说话不耐烦"],
    "S02": ["报修三天了还没人上门", "等了很久才回复"],
    "S03": ["收费和报价不一致", "维修费用太高"],
    "L01": ["收货时外箱破损，设备有划痕", "运输途中损坏"],
}
CONSULT_TEXT = [
    "想咨询新款机型的价格",
    "请问延保怎么购买",
    "能否提供产品手册",
    "想增加一台设备，请推荐型号",
]
FEEDBACK_TEXT = ["建议增加手机App远程控制", "希望滤芯更换提醒更早一些", "界面字体太小，建议放大"]
INSTALL_TEXT = ["新设备到货，申请安装调试", "请安排工程师上门安装"]
PM_TEXT = ["定期保养", "季度巡检保养"]
RECALL_TEXT = ["召回整改：更换压力阀组件", "召回整改：固件升级"]
RESOLUTION_NOTES = {
    "remote_fixed": "远程指导客户完成处理，设备恢复正常。",
    "onsite_fixed": "工程师上门检修，设备恢复正常。",
    "part_replaced": "更换故障备件后测试正常。",
    "unit_replaced": "整机更换。",
    "refunded": "按三包政策退款。",
    "answered": "已解答客户问题。",
    "user_error": "客户操作不当，已指导正确用法。",
    "no_fault_found": "检测未发现故障。",
    "duplicate": "重复工单。",
}
# 60 parts: the first ones are named; VK-7 is the valve kit of the §6 scenarios
PARTS = [
    ("VK-7", "压力阀组件 VK-7", "compressor", 420, 680, True, True),
    ("MT-2", "电机总成 MT-2", "compressor", 1800, 2600, True, True),
    ("FL-1", "PP滤芯 FL-1", "purifier", 35, 80, False, False),
    ("FL-3", "RO膜 FL-3", "purifier", 260, 450, False, True),
    ("CB-10", "主控板 CB-10", "controller", 520, 900, True, True),
    ("GW-1", "通信网关 GW-1", "controller", 300, 520, True, False),
]
KB_TOPICS = [
    "E07 压力阀泄漏处理",
    "E12 电机过热排查",
    "W03 滤芯更换步骤",
    "W09 漏水检查",
    "F01 固件恢复",
    "F05 通信中断排查",
    "定时开关机设置",
    "保养周期说明",
]

__all__ = [
    "BASE_PRIORITY",
    "CHANNELS",
    "COMPANY_WORDS",
    "CONSULT_TEXT",
    "DEVICE_TYPES",
    "DISTRICTS",
    "FAULT_TEXT",
    "FEEDBACK_TEXT",
    "GIVEN",
    "INDUSTRIES",
    "INSTALL_TEXT",
    "KB_TOPICS",
    "MODELS",
    "MODEL_SHARE",
    "NEGATIVE_WORDS",
    "PARTS",
    "PLACES",
    "PM_TEXT",
    "POSITIVE_WORDS",
    "PRIORITY_UP",
    "RECALL_TEXT",
    "REGIONS",
    "RESOLUTION_NOTES",
    "SURNAMES",
    "TYPES",
    "URGENT_WORDS",
    "WEEKDAY",
]
